export * from "./errors.js";
export * from "./clock.js";
export * from "./config.js";
export * from "./cron.js";
export * from "./logging.js";
export * from "./sanitize.js";
export * from "./atomic-file.js";
export * from "./witness-config.js";
