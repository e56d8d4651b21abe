// Structured logs for every Lockstep component. Tokens, keys and certificate material are redacted
// wherever they appear in a logged object, so an accidental `log.info({ kubeconfig })` leaks nothing.
import { type Logger, pino } from "pino";

export type { Logger } from "pino";

const REDACTED_PATHS = [
  "token",
  "*.token",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "password",
  "*.password",
  "keyPem",
  "*.keyPem",
  "privateKey",
  "*.privateKey",
  "keyData",
  "*.keyData",
  "certData",
  "*.certData",
  'data["tls.key"]',
  '*.data["tls.key"]',
  'data["ca.key"]',
  '*.data["ca.key"]',
];

export function createLogger(component: string, level = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino({
    name: `lockstep-${component}`,
    level,
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    base: { component },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
