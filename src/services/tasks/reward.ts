/**
 * The worker's reward for a completed task (docs/wire.md §13.5), as [G]
 * computes it on the submitter's side:
 *
 *   reward = round-half-up((1 + log2(1 + cpu_minutes)) × efficiency), at least 1
 *   efficiency = max(0.4, 1 − min(0.3, 0.3·idle_s/60) − min(0.3, 0.3·staged_s/600))
 *
 * idle = how long the task waited before the worker answered it, staged =
 * how long it waited in the queue once accepted, cpu = how long it ran.
 */
export interface TaskTimes {
  idleMs: number
  stagedMs: number
  cpuMs: number
}

export function taskReward(t: TaskTimes): number {
  const clean = (v: number): number => (Number.isFinite(v) && v > 0 ? v : 0)
  const cpuMinutes = clean(t.cpuMs) / 60_000
  const idleS = clean(t.idleMs) / 1000
  const stagedS = clean(t.stagedMs) / 1000
  const efficiency = Math.max(0.4, 1 - Math.min(0.3, (0.3 * idleS) / 60) - Math.min(0.3, (0.3 * stagedS) / 600))
  const raw = (1 + Math.log2(1 + cpuMinutes)) * efficiency
  return Math.max(1, Math.floor(raw + 0.5))
}
