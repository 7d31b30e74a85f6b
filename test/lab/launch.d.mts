/** Types for launch.mjs (plain JS so that the agents' restore command starts fast). */
export interface LaunchOptions {
  namespace: string;
  argv: string[];
  logFile: string;
  pidFile: string;
  /** Kill the process in pidFile first if its command line contains this. */
  replaceMatching?: string;
  /** The started process's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
}
export function launchDetached(options: LaunchOptions): Promise<number>;
