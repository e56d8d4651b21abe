// The profiles every component watches (the agent renders them for its node, the controller derives
// their status, the webhook checks that a pod's profiles exist): one list+watch per kind, and the
// rendering of each kind cached until a spec of that kind changes. Rendering resolves inheritance
// across all profiles of a kind, so any spec change (or a profile appearing or going) can change
// another profile's rendering; a status or metadata write changes none.
import type { ProfileStatus } from "../api/common.ts";
import { PROFILE_KINDS, type ProfileKind, profilePath } from "../api/constants.ts";
import { MAX_PROFILE_OBJECT_BYTES } from "../api/limits.ts";
import {
  type RenderedProfile,
  renderAppArmorProfiles,
  renderSeccompProfiles,
  SeccompRenderMemo,
} from "../api/profiles.ts";
import type { KubeClient } from "./client.ts";
import { kubeErrorMessage } from "./errors.ts";
import { Informer, type KubeObject } from "./informer.ts";
import type { Logger } from "./logger.ts";

export type ProfileObject = KubeObject & {
  metadata?: KubeObject["metadata"] & { generation?: number; finalizers?: string[] };
  spec?: unknown;
  status?: ProfileStatus;
};

/** What a change to one profile means: `specChanged` when its rendering (or its kind's) may differ. */
export type ProfileChange = {
  kind: ProfileKind;
  name: string;
  verb: "add" | "update" | "delete";
  specChanged: boolean;
};

/** The log line a component writes when a watch fails and is retried; silent while it stops. */
export function logWatchFailures(log: Logger, what: string, isStopping: () => boolean) {
  return (error: unknown, retryInMs: number) => {
    if (!isStopping())
      log.warn({ watch: what, err: kubeErrorMessage(error), retryInMs }, "watch failed; restarting");
  };
}

export class ProfileCache {
  private readonly informers: Record<ProfileKind, Informer<ProfileObject>>;
  private readonly renderings: Record<ProfileKind, Map<string, RenderedProfile> | undefined> = {
    seccomp: undefined,
    apparmor: undefined,
  };
  /**
   * Per kind, what contentFor returned, by version and node architecture. Kept across re-renderings: a
   * spec change (a profile created) re-renders the whole kind, but changes few of its profiles, and
   * serialising a profile for a node (a few hundred syscall rules from runtime/default) is most of what
   * an agent's sync costs. The version hashes the resolved profile, so it names the content exactly.
   */
  private contents: Record<ProfileKind, Map<string, string>> = { seccomp: new Map(), apparmor: new Map() };
  /** Parsing and resolution of unchanged SeccompProfiles, carried across re-renderings. */
  private readonly seccompMemo = new SeccompRenderMemo();

  constructor(client: KubeClient, log: Logger, isStopping: () => boolean) {
    const informer = (kind: ProfileKind) =>
      new Informer<ProfileObject>(client, {
        path: profilePath(kind),
        onError: logWatchFailures(log, `${kind} profiles`, isStopping),
        maxObjectBytes: MAX_PROFILE_OBJECT_BYTES,
      });
    this.informers = { seccomp: informer("seccomp"), apparmor: informer("apparmor") };
    this.onChange((change) => {
      if (change.specChanged) this.renderings[change.kind] = undefined;
    });
  }

  /** Called for every change, after the cache holds it. */
  onChange(handler: (change: ProfileChange) => void): void {
    for (const kind of PROFILE_KINDS) {
      const informer = this.informers[kind];
      const nameOf = (o: ProfileObject) => o.metadata?.name ?? "";
      informer.on("add", (o) => handler({ kind, name: nameOf(o), verb: "add", specChanged: true }));
      informer.on("delete", (o) => handler({ kind, name: nameOf(o), verb: "delete", specChanged: true }));
      // The API server bumps metadata.generation on a spec change only (status is a subresource).
      informer.on("update", (o, old) =>
        handler({
          kind,
          name: nameOf(o),
          verb: "update",
          specChanged: o.metadata?.generation !== old?.metadata?.generation,
        }),
      );
    }
  }

  get(kind: ProfileKind, name: string): ProfileObject | undefined {
    return this.informers[kind].get(name);
  }

  list(kind: ProfileKind): ProfileObject[] {
    return this.informers[kind].list();
  }

  /** Every profile of a kind, rendered (inheritance resolved), by name; cached until a spec changes. */
  rendered(kind: ProfileKind): ReadonlyMap<string, RenderedProfile> {
    const cached = this.renderings[kind];
    if (cached) return cached;
    const refs = this.list(kind).map((o) => ({
      name: o.metadata?.name ?? "",
      uid: o.metadata?.uid,
      spec: o.spec,
    }));
    const all =
      kind === "seccomp" ? renderSeccompProfiles(refs, this.seccompMemo) : renderAppArmorProfiles(refs);
    // Only what this rendering asks for is carried over, so the contents of gone versions are dropped.
    const previous = this.contents[kind];
    const contents = new Map<string, string>();
    this.contents[kind] = contents;
    const byName = new Map(
      all.map((p): [string, RenderedProfile] => {
        if (!p.ok) return [p.name, p];
        const render = p.contentFor;
        const contentFor = (nodeArch: string | undefined) => {
          const key = `${p.version}\0${nodeArch ?? ""}`;
          const content = contents.get(key) ?? previous.get(key) ?? render(nodeArch);
          contents.set(key, content);
          return content;
        };
        return [p.name, { ...p, contentFor }];
      }),
    );
    this.renderings[kind] = byName;
    return byName;
  }

  /** The resourceVersion a kind was last listed at: the cache has seen every write of it up to there. */
  listedResourceVersion(kind: ProfileKind): string {
    return this.informers[kind].listedResourceVersion;
  }

  /** Why the caches are not listed or no longer follow the API server; undefined while both do. */
  notLiveReason(now = Date.now()): string | undefined {
    const reasons = PROFILE_KINDS.flatMap((kind) => this.informers[kind].notLiveReason(now) ?? []);
    return reasons.length > 0 ? `profile caches: ${reasons.join("; ")}` : undefined;
  }

  /** Resolves once both kinds are listed. */
  async start(): Promise<void> {
    await Promise.all(PROFILE_KINDS.map((kind) => this.informers[kind].start()));
  }

  async stop(): Promise<void> {
    await Promise.all(PROFILE_KINDS.map((kind) => this.informers[kind].stop()));
  }
}
