// Why a profile that belongs on this node is not installed: the reasons the agent reports in its
// InstallFailed Events (events.ts), which the controller copies into status.missingNodes. One home
// for the agent's own reasons; a profile that cannot be rendered carries its renderer's reason.
import { INVALID_POLICY, type RenderedProfile } from "../src/api/profiles.ts";
import type { RefusalDuration } from "./apparmor.ts";

export const INSTALL_FAILURE_REASONS = {
  /** The name is held by something the agent did not put there: a kernel profile, a folder entry. */
  nameTaken: "NameTaken",
  /** apparmor_parser refused the policy: a parse error, or it declares more or other than allowed. */
  policyRefused: INVALID_POLICY,
  writeFailed: "WriteFailed",
  loadFailed: "LoadFailed",
} as const;

export interface InstallFailure {
  profile: RenderedProfile;
  reason: string;
  message: string;
}

/**
 * The failure of a policy apparmor_parser refused: a verdict on the policy (lasting, or this
 * run's wall-clock limit) is InvalidPolicy; a parser that could not run at all says nothing about the
 * policy, so that is a failed load.
 */
export function refusalFailure(
  profile: RenderedProfile,
  refused: { message: string; duration: RefusalDuration },
): InstallFailure {
  return {
    profile,
    reason:
      refused.duration === "none"
        ? INSTALL_FAILURE_REASONS.loadFailed
        : INSTALL_FAILURE_REASONS.policyRefused,
    message: refused.message,
  };
}
