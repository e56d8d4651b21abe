// client-node's ApiException carries the API server's Status as a JSON string in `body`; these
// helpers read it, so callers can branch on the HTTP code and show users the server's own message.
import { ApiException } from "@kubernetes/client-node";
import { z } from "zod";

const StatusSchema = z.object({
  message: z.string().optional(),
  reason: z.string().optional(),
  code: z.number().optional(),
});

/** The HTTP status of a failed API call, or undefined for errors that are not API responses. */
export function kubeErrorCode(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

export function isKubeError(error: unknown, code: number): boolean {
  return kubeErrorCode(error) === code;
}

/** The API server's message for a failed call (e.g. an admission denial), else the error's own message. */
export function kubeErrorMessage(error: unknown): string {
  if (error instanceof ApiException) {
    const body: unknown = error.body;
    try {
      const status = StatusSchema.parse(typeof body === "string" ? JSON.parse(body) : body);
      if (status.message) return status.message;
    } catch {
      // Not a Status object (a proxy's HTML error page, say): fall through to the generic text.
    }
    return `HTTP ${error.code}`;
  }
  return error instanceof Error ? error.message : String(error);
}
