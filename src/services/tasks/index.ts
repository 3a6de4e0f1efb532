/**
 * The task submission service (port 1003): what the daemon builds. See
 * task-service.ts for the behaviour, task-store.ts for the files.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { Logger } from '../../logger.js'
import { TaskService, type TaskServiceDeps } from './task-service.js'
import { TaskStore } from './task-store.js'
import { TaskError, TaskErrorCode } from './task-errors.js'

export { TaskService, TASK_PORT, type TaskServiceDeps, type TaskStream } from './task-service.js'
export { TaskStore, type TaskRecord } from './task-store.js'
export { TaskError, TaskErrorCode } from './task-errors.js'
export type * from './task-api.js'

/** Opens `<stateDir>/tasks` and starts serving port 1003. */
export async function startTaskService(
  stateDir: string,
  deps: Omit<TaskServiceDeps, 'store' | 'randomBytes'> & { randomBytes?: TaskServiceDeps['randomBytes'] },
  logger: Logger,
): Promise<TaskService> {
  const store = await TaskStore.open(join(stateDir, 'tasks'))
  return new TaskService({ randomBytes: (n) => randomBytes(n), ...deps, store, logger })
}

export function tasksDisabledError(): TaskError {
  return new TaskError(TaskErrorCode.DISABLED, 'the task service is off on this daemon', { hint: 'start it without --no-tasks (or "tasks": true in the config file)' })
}
