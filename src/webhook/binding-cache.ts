// The ProfileBindings of every namespace, watched (one list+watch), parsed and compiled once per version
// of a namespace's bindings: a review reads an array, it never parses a binding or compiles a glob.
import { type CompiledBinding, compileBinding } from "../api/binding-match.ts";
import { formatZodIssues } from "../api/common.ts";
import {
  PROFILE_BINDING_KIND,
  ProfileBindingSchema,
  type ProfileBindingStatus,
  profileBindingPath,
} from "../api/profile-binding.ts";
import type { KubeClient } from "../kube/client.ts";
import { Informer, type KubeObject } from "../kube/informer.ts";
import type { Logger } from "../kube/logger.ts";
import { logWatchFailures } from "../kube/profile-cache.ts";

type BindingObject = KubeObject & { spec?: unknown; status?: ProfileBindingStatus };

/** A ProfileBinding is a few KiB at most (bounded selector, one pattern); the informer pages by it. */
const MAX_BINDING_OBJECT_BYTES = 64 * 1024;

const NO_BINDINGS: readonly CompiledBinding[] = [];

export class BindingCache {
  private readonly informer: Informer<BindingObject>;
  /**
   * The bindings of each namespace that has any, kept from the watch's events: a review of a namespace
   * without bindings finds nothing here in constant time, and nothing is stored for it (a caller that
   * reaches the port could name any number of namespaces).
   */
  private readonly byNamespace = new Map<string, Map<string, BindingObject>>();
  /** Compiled bindings of a namespace in byNamespace, dropped when one of them changes. */
  private readonly compiled = new Map<string, readonly CompiledBinding[]>();
  private readonly log: Logger;

  constructor(client: KubeClient, log: Logger, isStopping: () => boolean) {
    this.log = log;
    this.informer = new Informer<BindingObject>(client, {
      path: profileBindingPath(),
      onError: logWatchFailures(log, "profile bindings", isStopping),
      maxObjectBytes: MAX_BINDING_OBJECT_BYTES,
      // Status changes often (the webhook writes it) and changes no decision: only spec is compiled.
    });
    const put = (o: BindingObject) => {
      const namespace = o.metadata?.namespace ?? "";
      const held = this.byNamespace.get(namespace) ?? new Map<string, BindingObject>();
      held.set(o.metadata?.name ?? "", o);
      this.byNamespace.set(namespace, held);
    };
    const drop = (o: BindingObject) => this.compiled.delete(o.metadata?.namespace ?? "");
    this.informer.on("add", (o) => {
      put(o);
      drop(o);
    });
    this.informer.on("delete", (o) => {
      const namespace = o.metadata?.namespace ?? "";
      const held = this.byNamespace.get(namespace);
      held?.delete(o.metadata?.name ?? "");
      if (held?.size === 0) this.byNamespace.delete(namespace);
      drop(o);
    });
    this.informer.on("update", (o, old) => {
      // Kept for status (current()); recompiled only when what decides changes.
      put(o);
      if (JSON.stringify(o.spec) !== JSON.stringify(old?.spec) || o.metadata?.deletionTimestamp) drop(o);
    });
  }

  start(): Promise<void> {
    return this.informer.start();
  }

  stop(): Promise<void> {
    return this.informer.stop();
  }

  notLiveReason(): string | undefined {
    const reason = this.informer.notLiveReason();
    return reason && `profile bindings cache: ${reason}`;
  }

  /** The bindings acting in a namespace, compiled. */
  inNamespace(namespace: string): readonly CompiledBinding[] {
    const held = this.byNamespace.get(namespace);
    if (!held) return NO_BINDINGS;
    const cached = this.compiled.get(namespace);
    if (cached) return cached;
    const compiled = [...held.values()]
      .filter((o) => o.metadata?.deletionTimestamp === undefined)
      .flatMap((o) => {
        const parsed = ProfileBindingSchema.safeParse(o);
        if (parsed.success) return [compileBinding(parsed.data.metadata.name, parsed.data.spec)];
        // The CRD accepts what the schema does (binding-crd.ts); a binding that passed one and not the
        // other is a bug to see in the log, and acts on no pod.
        this.log.error(
          { namespace, err: formatZodIssues(PROFILE_BINDING_KIND, o.metadata?.name ?? "", parsed.error) },
          "ignoring a ProfileBinding that does not parse",
        );
        return [];
      })
      .sort((a, b) => (a.name < b.name ? -1 : 1));
    this.compiled.set(namespace, compiled);
    return compiled;
  }

  /** The cached resourceVersion and status of one binding, for a status write that must not go back. */
  current(
    namespace: string,
    name: string,
  ): { resourceVersion: string; status: ProfileBindingStatus } | undefined {
    const o = this.informer.get(name, namespace);
    const resourceVersion = o?.metadata?.resourceVersion;
    if (!o || resourceVersion === undefined) return undefined;
    return { resourceVersion, status: o.status ?? {} };
  }
}
