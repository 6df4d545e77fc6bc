// What every backing-service provider hands back: how to describe it at
// start-up and how to stop it if this process started it.
export interface RunningService {
  /** One line for the start-up log: URL, embedded, version. */
  description: string;
  /** Stops what this process started; a no-op for external services. */
  stop(): Promise<void>;
}
