/** Types for launch.mjs (plain JS so that the agents' restore command starts fast). */
export interface LaunchOptions {
  namespace: string;
  argv: string[];
  logFile: string;
  pidFile: string;
  /** Kill the process in pidFile first if its command line contains this. */
  replaceMatching?: string;
}
export function launchDetached(options: LaunchOptions): Promise<number>;
