// Failed API calls, whichever client made them: the components' thin client throws KubeApiError
// with the API server's Status message; client-node (used by the CLI, the harness and tests) throws
// ApiException with that Status as a JSON string in `body`. These helpers read both without loading
// client-node, so callers can branch on the HTTP code and show users the server's own message.
import * as z from "zod";
import { KubeApiError, readStatus } from "./client.ts";

/** client-node's ApiException, recognised by shape so that importing this file does not load client-node. */
const ApiExceptionShape = z.object({ code: z.number(), body: z.unknown() });

/** The HTTP status of a failed API call, or undefined for errors that are not API responses. */
export function kubeErrorCode(error: unknown): number | undefined {
  if (error instanceof KubeApiError) return error.code;
  if (!(error instanceof Error)) return undefined;
  const shape = ApiExceptionShape.safeParse(error);
  return shape.success ? shape.data.code : undefined;
}

export function isKubeError(error: unknown, code: number): boolean {
  return kubeErrorCode(error) === code;
}

/** The API server's message for a failed call (e.g. an admission denial), else the error's own message. */
export function kubeErrorMessage(error: unknown): string {
  if (error instanceof KubeApiError) return error.message;
  const shape = error instanceof Error ? ApiExceptionShape.safeParse(error) : undefined;
  if (shape?.success) {
    return readStatus(shape.data.body).message ?? `HTTP ${shape.data.code}`;
  }
  return error instanceof Error ? error.message : String(error);
}
