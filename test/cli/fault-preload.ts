// Preloaded (`node --import`) into a `pilot-tun up` child by process-policy.test.ts:
// on SIGUSR2 it injects the fault named by PILOT_TUN_TEST_FAULT into the daemon
// process. Without that variable (e.g. when the test runner loads this file) it
// does nothing.
const fault = process.env.PILOT_TUN_TEST_FAULT

if (fault === 'rejection' || fault === 'exception') {
  process.on('SIGUSR2', () => {
    setImmediate(() => {
      if (fault === 'rejection') void Promise.reject(new Error('injected rejection for the test'))
      else throw new Error('injected exception for the test')
    })
  })
}

export {}
