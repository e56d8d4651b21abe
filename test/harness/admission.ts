// Checking admission decisions on the real API server: what a call came to, and waiting for a new
// ValidatingAdmissionPolicy to be enforced.
import * as k8s from "@kubernetes/client-node";
import { kubeErrorCode, kubeErrorMessage } from "../../src/kube/errors.ts";
import { waitFor } from "./controlplane.ts";

/** "allowed", or the HTTP code and the API server's message. */
export const outcome = async (call: Promise<unknown>): Promise<string> =>
  call.then(
    () => "allowed",
    (e: unknown) => `${kubeErrorCode(e)}: ${kubeErrorMessage(e)}`,
  );

/**
 * The API server compiles a new policy in the background, so it takes effect a moment after it is
 * created: wait until a dry run (admission runs, nothing is stored) of a change it forbids is refused
 * by it. RBAC, also informer-driven, may refuse everything at first, hence the policy's name.
 */
export const untilEnforced = (policy: string, forbidden: () => Promise<unknown>) =>
  waitFor(`${policy} to be enforced`, async () =>
    (await outcome(forbidden())).includes(`ValidatingAdmissionPolicy '${policy}'`),
  );

/** The message of an API error (a refusal by a webhook, a policy or the CRD), as the API server's Status says it. */
export function apiErrorMessage(error: unknown): string {
  if (!(error instanceof k8s.ApiException)) return String(error);
  try {
    return String((JSON.parse(String(error.body)) as { message?: unknown }).message);
  } catch {
    return String(error.body);
  }
}

/** The API server's message refusing `call`; throws when the call succeeds. */
export async function refusal(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (error) {
    return apiErrorMessage(error);
  }
  throw new Error("expected the API server to refuse");
}
