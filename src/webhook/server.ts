// The HTTPS server for AdmissionReview v1 on pod CREATE and on UPDATE of pods/ephemeralcontainers:
// parse (every field Lockstep reads, with a schema: a malformed review or pod is refused with the field
// named), decide (review.ts), answer with a JSONPatch. Profiles come from watch caches, so a review
// costs no API call unless the pod names its node (then one GET of that Node).

import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import { StringDecoder } from "node:string_decoder";
import type { V1Node } from "@kubernetes/client-node";
import * as z from "zod";
import { formatIssuePath, formatZodIssues, objectNameOf } from "../api/common.ts";
import type { ProfileKind } from "../api/constants.ts";
import { WEBHOOK_PATH, WEBHOOK_TIMEOUT_SECONDS } from "../api/constants.ts";
import { placementOf, profileRevision, renderingRevision } from "../api/node-profiles.ts";
import {
  type AdmittedPod,
  AdmittedPodSchema,
  EPHEMERAL_CONTAINERS_SUBRESOURCE,
} from "../api/pod-profiles.ts";
import {
  type BindingsNamespaceMode,
  bindingsModeOfPath,
  profileBindingPath,
} from "../api/profile-binding.ts";
import { RECORDING_WEBHOOK_PATH } from "../api/profile-recording.ts";
import type { KubeClient } from "../kube/client.ts";
import { isKubeError, kubeErrorMessage } from "../kube/errors.ts";
import type { Logger } from "../kube/logger.ts";
import type { MetricsRegistry } from "../kube/metrics.ts";
import { ProfileCache, type ProfileObject } from "../kube/profile-cache.ts";
import { type BindingScope, reviewBoundEphemeralContainers, reviewBoundPodCreate } from "./bind.ts";
import { BindingCache } from "./binding-cache.ts";
import { BindingStatusRecorder, STATUS_FLUSH_MS } from "./binding-status.ts";
import { ByteBudget } from "./byte-budget.ts";
import { reviewRecordedPodCreate } from "./record.ts";
import { RecordingCache } from "./recording-cache.ts";
import { type PodReview, type ProfileView, reviewEphemeralContainers, reviewPodCreate } from "./review.ts";
import { SerialLane } from "./serial-lane.ts";
import type { CertificateSource, ServingCertificate } from "./serving-certs.ts";

/**
 * The largest AdmissionReview read. The API server refuses a request body over 3 MiB (its
 * MaxRequestBodyBytes) and etcd stores an object of at most 1.5 MiB (--max-request-bytes): a pod CREATE
 * carries the pod once, kubectl debug (UPDATE of pods/ephemeralcontainers) the stored pod twice. Only a
 * pod near etcd's limit (as JSON, which can be larger than what etcd stores) goes beyond; none is real
 * (a real review is a few KiB). A larger body is refused unread (413). What the worst bodies under it
 * cost: bench/webhook-hostile.bench.ts.
 */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

/**
 * JSON.parse allocates an object per value, whatever the body's size: 3 MiB of `[{},{},...]` is a
 * million objects, 150 MiB resident for one review. A body with more than MAX_JSON_CONTAINERS_AND_ITEMS
 * of `{`, `[` and `,` (an upper bound on its objects, arrays and list items, counted as the body arrives:
 * in UTF-8 these bytes are never part of another character, so they are the text's `{`, `[` and `,`) is
 * refused before it is parsed. A pod with the most containers the webhook accepts (MAX_POD_CONTAINERS,
 * each about 40 of them once the API server has defaulted it) stays well below. Each of them is a byte,
 * so only a body longer than this many bytes can hold too many: shorter ones, every real review, are
 * not scanned at all (scanning each review's every byte cost its throughput, docs/benchmarks.md).
 */
export const MAX_JSON_CONTAINERS_AND_ITEMS = 100_000;

/**
 * A real review is a few KiB (one pod as JSON). The first SMALL_BODY_BYTES of every body are read
 * freely; anything beyond comes out of LARGE_BODIES_BUDGET_BYTES, shared by all connections, and held
 * until the body is answered; a body that does not fit is refused (503). A client sending many large
 * bodies at once therefore holds at most the budget in memory. Large reviews are answered one at a time
 * after the small ones waiting (SerialLane): answered in the order read, real reviews under
 * bench/webhook-hostile.bench.ts waited up to 5.1 s, the API server's whole timeout.
 */
export const SMALL_BODY_BYTES = 64 * 1024;
export const LARGE_BODIES_BUDGET_BYTES = 8 * 1024 * 1024;

/**
 * Connections held at once, beyond which new ones are closed at once. One API server sends at most
 * --max-mutating-requests-inflight (default 200) reviews at a time, one per connection (HTTP/1.1), and
 * two replicas share them; 512 leaves room for three API servers. Each costs a TLS socket and at most
 * SMALL_BODY_BYTES of body.
 */
export const MAX_CONNECTIONS = 512;

/**
 * TLS handshake, headers and the whole request must arrive within the time the API server waits for
 * the answer (WEBHOOK_TIMEOUT_SECONDS): after that nobody reads it. Node's defaults (120 s handshake,
 * 300 s request) let a slow client hold a connection for minutes (slowloris). Node checks these every
 * CONNECTIONS_CHECK_MS (default 30 s, which would let a slow client stay 35 s).
 */
export const REQUEST_TIMEOUT_MS = WEBHOOK_TIMEOUT_SECONDS * 1000;
const CONNECTIONS_CHECK_MS = 500;
/** The API server sends a handful of short headers. */
const MAX_HEADER_BYTES = 8 * 1024;

/** A refusal's message is cut here: it is shown to whoever created the pod, in one line. */
export const MAX_MESSAGE_CHARS = 4096;

export function boundedMessage(message: string): string {
  if (message.length <= MAX_MESSAGE_CHARS) return message;
  return `${message.slice(0, MAX_MESSAGE_CHARS)}... (${message.length - MAX_MESSAGE_CHARS} more characters)`;
}

/**
 * How long an idle connection is kept open. The API server's webhook client (client-go's transport on
 * Go's http.Transport) keeps idle connections for 90 s; Node's default of 5 s made every review that
 * came more than 5 s after the previous one pay a new TCP and TLS handshake, and let the webhook close a
 * connection just as the API server sent a review on it. Longer than the client's, so the client closes.
 */
const KEEP_ALIVE_TIMEOUT_MS = 100_000;

const AdmissionReviewSchema = z.object({
  apiVersion: z.literal("admission.k8s.io/v1"),
  kind: z.literal("AdmissionReview"),
  request: z.object({
    uid: z.string().min(1),
    resource: z.object({ group: z.string(), version: z.string(), resource: z.string() }),
    subResource: z.string().optional(),
    operation: z.enum(["CREATE", "UPDATE", "DELETE", "CONNECT"]),
    namespace: z.string().optional(),
    object: z.unknown(),
    oldObject: z.unknown().optional(),
    // A dry run changes nothing: no binding's status counts it (the configuration says sideEffects None).
    dryRun: z.boolean().optional(),
  }),
});
type AdmissionRequest = z.infer<typeof AdmissionReviewSchema>["request"];

/** The uid of a review that did not parse, when it has one to answer to. */
const UidOnlySchema = z.object({ request: z.object({ uid: z.string().min(1) }) });

export interface WebhookServerOptions {
  client: KubeClient;
  port: number;
  host: string;
  certificates: CertificateSource;
  /** How often certificates are re-read (renewal, cert-manager rotation). */
  certificateCheckMs?: number;
  log: Logger;
  metrics: MetricsRegistry;
}

export class WebhookServer {
  private readonly opts: WebhookServerOptions;
  private readonly client: KubeClient;
  private readonly profiles: ProfileCache;
  private readonly bindings: BindingCache;
  private readonly recordings: RecordingCache;
  private readonly bindingStatus = new BindingStatusRecorder();
  private statusTimer: NodeJS.Timeout | undefined;
  private server: Server | undefined;
  private certificate: ServingCertificate | undefined;
  private synced = false;
  private stopping = false;
  private certTimer: NodeJS.Timeout | undefined;
  private readonly m;
  /**
   * Each cached profile's view, computed once instead of several times per review (placementOf parses
   * the nodeSelector): the informer stores a new object for every change, so a view is never stale.
   */
  private readonly views = new WeakMap<ProfileObject, ProfileView>();
  private readonly largeBodies = new ByteBudget(LARGE_BODIES_BUDGET_BYTES);
  /** Large reviews are answered one at a time, after whatever small ones are waiting (serial-lane.ts). */
  private readonly largeReviews = new SerialLane();

  constructor(opts: WebhookServerOptions) {
    this.opts = opts;
    this.client = opts.client;
    this.profiles = new ProfileCache(this.client, opts.log, () => this.stopping);
    this.bindings = new BindingCache(this.client, opts.log, () => this.stopping);
    this.recordings = new RecordingCache(this.client, opts.log, () => this.stopping);
    this.m = {
      reviews: opts.metrics.counter("lockstep_webhook_reviews_total", "AdmissionReviews answered, by result"),
      latency: opts.metrics.histogram(
        "lockstep_webhook_review_duration_seconds",
        "Time from request to response",
        // From 0.1 ms: a review takes a fraction of a millisecond, and the benchmark reads its quantiles here.
        [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      ),
    };
  }

  notReadyReason(): string | undefined {
    if (this.stopping) return "shutting down";
    if (!this.certificate) return "serving certificate not loaded";
    if (!this.synced) return "profile caches not synced";
    // A cache that stopped following the API server would admit pods requiring revisions from before
    // a profile's update: not ready, so the Service sends reviews to a replica whose watch works.
    return this.profiles.notLiveReason() ?? this.bindings.notLiveReason() ?? this.recordings.notLiveReason();
  }

  async start(): Promise<void> {
    const { log } = this.opts;
    await Promise.all([this.profiles.start(), this.bindings.start(), this.recordings.start()]);
    this.synced = true;
    this.statusTimer = setInterval(() => void this.writeBindingStatus(), STATUS_FLUSH_MS);
    this.certificate = await this.opts.certificates.load();
    this.server = createServer(
      {
        cert: this.certificate.certPem,
        key: this.certificate.keyPem,
        minVersion: "TLSv1.2",
        handshakeTimeout: REQUEST_TIMEOUT_MS,
        headersTimeout: REQUEST_TIMEOUT_MS,
        requestTimeout: REQUEST_TIMEOUT_MS,
        connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
        maxHeaderSize: MAX_HEADER_BYTES,
        keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      },
      (req, res) => void this.handle(req, res),
    );
    this.server.maxConnections = MAX_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      this.server?.once("error", reject);
      this.server?.listen(this.opts.port, this.opts.host, () => resolve());
    });
    this.certTimer = setInterval(
      () => void this.reloadCertificate(),
      this.opts.certificateCheckMs ?? 300_000,
    );
    log.info({ port: this.opts.port }, "serving AdmissionReviews");
  }

  /** Stops accepting connections and waits (up to `graceMs`) for reviews in flight to be answered. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    clearInterval(this.certTimer);
    clearInterval(this.statusTimer);
    const server = this.server;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(timer);
    }
    await Promise.all([this.profiles.stop(), this.bindings.stop(), this.recordings.stop()]);
  }

  /** One status PATCH per binding with news (binding-status.ts); a failed one is retried next time. */
  private async writeBindingStatus(): Promise<void> {
    for (const write of this.bindingStatus.drain((ns, name) => this.bindings.current(ns, name)))
      try {
        await this.client.patch(
          `${profileBindingPath(write.namespace, write.name)}/status`,
          "merge",
          write.body,
        );
      } catch (error) {
        // 409: another replica wrote first; 404: the binding is gone (its news are then dropped next time).
        if (!isKubeError(error, 404)) write.restore();
        this.opts.log.debug(
          { binding: `${write.namespace}/${write.name}`, err: kubeErrorMessage(error) },
          "binding status not written",
        );
      }
  }

  private async reloadCertificate(): Promise<void> {
    try {
      const next = await this.opts.certificates.load();
      if (next.certPem !== this.certificate?.certPem) {
        this.server?.setSecureContext({ cert: next.certPem, key: next.keyPem, minVersion: "TLSv1.2" });
        this.certificate = next;
        this.opts.log.info("reloaded the serving certificate");
      }
    } catch (error) {
      this.opts.log.error({ err: kubeErrorMessage(error) }, "could not reload the serving certificate");
    }
  }

  private profileView(kind: ProfileKind, name: string): ProfileView | undefined {
    const obj = this.profiles.get(kind, name);
    if (!obj) return undefined;
    let view = this.views.get(obj);
    if (!view) {
      view = {
        terminating: obj.metadata?.deletionTimestamp !== undefined,
        installedNodes: obj.status?.nodes?.installed,
        placement: placementOf(kind, obj),
      };
      this.views.set(obj, view);
    }
    // Read at every review, not kept in the view: a base's update moves it without touching this object.
    const revision = renderingRevision(kind, name, (n) => {
      const link = this.profiles.get(kind, n);
      return link && { revision: profileRevision(link), spec: link.spec };
    });
    return { ...view, placement: { ...view.placement, revision } };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const reply = (status: number, body: unknown, result: string, close = false) => {
      // A body left unread is not drained: the connection is closed after the answer.
      res.writeHead(status, {
        "Content-Type": "application/json",
        ...(close ? { Connection: "close" } : {}),
      });
      res.end(JSON.stringify(body));
      this.m.reviews.inc({ result });
      this.m.latency.observe(Number(process.hrtime.bigint() - started) / 1e9);
    };
    const path = req.url?.split("?")[0] ?? "";
    // The plain route, a route of a namespace where ProfileBindings act (the mode is in the path), or
    // the route of a namespace where ProfileRecordings run.
    const mode: Route | undefined =
      path === RECORDING_WEBHOOK_PATH ? RECORDING_ROUTE : bindingsModeOfPath(path);
    if (req.method !== "POST" || (path !== WEBHOOK_PATH && mode === undefined))
      return reply(404, { error: "not found" }, "not_found", true);

    const read = await readBody(req, this.largeBodies);
    try {
      if (read === undefined) return; // the client went away: nobody to answer
      if (read === TOO_LARGE)
        return reply(413, { error: `request too large: at most ${MAX_BODY_BYTES} bytes` }, "error", true);
      if (read === TOO_COMPLEX)
        return reply(
          413,
          {
            error: `request too complex: more than ${MAX_JSON_CONTAINERS_AND_ITEMS} JSON objects, arrays and items`,
          },
          "error",
          true,
        );
      if (read === BUSY) return reply(503, { error: "too many large reviews at once: retry" }, "busy", true);
      if (read.raw.length > SMALL_BODY_BYTES)
        await this.largeReviews.run(() => this.answer(read.raw, reply, mode));
      else await this.answer(read.raw, reply, mode);
    } finally {
      if (typeof read === "object") this.largeBodies.release(read.budgeted);
    }
  }

  private async answer(
    raw: string,
    reply: (status: number, body: unknown, result: string) => void,
    mode: Route | undefined,
  ): Promise<void> {
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch (error) {
      return reply(
        400,
        { error: boundedMessage(`the body is not JSON: ${kubeErrorMessage(error)}`) },
        "error",
      );
    }
    const respondTo = (uid: string) => (response: Record<string, unknown>, result: string) =>
      reply(
        200,
        { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid, ...response } },
        result,
      );
    const deny = (uid: string, message: string) =>
      respondTo(uid)(
        { allowed: false, status: { code: 400, reason: "BadRequest", message: boundedMessage(message) } },
        "malformed",
      );

    const review = AdmissionReviewSchema.safeParse(body);
    if (!review.success) {
      const message = `not an AdmissionReview v1: ${review.error.issues
        .map((i) => `${formatIssuePath(i.path) || "(the body)"}: ${i.message}`)
        .join("; ")}`;
      // With a uid the API server can match the answer to its request; without one there is nobody to answer.
      const uid = UidOnlySchema.safeParse(body);
      return uid.success
        ? deny(uid.data.request.uid, message)
        : reply(400, { error: boundedMessage(message) }, "error");
    }
    const request = review.data.request;
    const respond = respondTo(request.uid);

    try {
      const decision = await this.decide(request, mode);
      if (typeof decision === "string") return deny(request.uid, decision);
      const podRef = `${request.namespace ?? ""}/${objectNameOf(request.object)}`;
      if (!decision.allowed) {
        this.opts.log.info(
          { pod: podRef, operation: request.operation, reason: decision.message },
          "denied pod",
        );
        return respond(
          {
            allowed: false,
            status: { code: 403, reason: "Forbidden", message: boundedMessage(decision.message) },
          },
          "denied",
        );
      }
      if (decision.patch.length === 0)
        return respond({ allowed: true, warnings: decision.warnings }, "allowed");
      this.opts.log.debug({ pod: podRef, profiles: decision.profiles }, "patched pod");
      return respond(
        {
          allowed: true,
          patchType: "JSONPatch",
          patch: base64Json(decision.patch),
          warnings: decision.warnings,
        },
        "patched",
      );
    } catch (error) {
      this.opts.log.error({ err: kubeErrorMessage(error) }, "review failed");
      return respond(
        {
          allowed: false,
          status: {
            code: 500,
            message: boundedMessage(`Lockstep webhook error: ${kubeErrorMessage(error)}`),
          },
        },
        "error",
      );
    }
  }

  /** The decision on one request, or the message for a pod that does not parse. */
  private async decide(request: AdmissionRequest, route: Route | undefined): Promise<PodReview | string> {
    const { resource, subResource, operation } = request;
    const isPods = resource.group === "" && resource.resource === "pods";
    const isCreate = isPods && operation === "CREATE" && !subResource;
    const isDebug = isPods && operation === "UPDATE" && subResource === EPHEMERAL_CONTAINERS_SUBRESOURCE;
    // The configuration sends nothing else; anything else is none of Lockstep's business.
    if (!isCreate && !isDebug) return { allowed: true, patch: [], warnings: [], profiles: [] };
    const pod = parsePod(request.object, "object");
    if (typeof pod === "string") return pod;
    const context = async () => {
      const nodeName = pod.spec.nodeName;
      const boundNodeLabels = nodeName ? await this.nodeLabels(nodeName) : undefined;
      return { profile: (k: ProfileKind, n: string) => this.profileView(k, n), boundNodeLabels };
    };
    const namespace = request.namespace ?? "";
    if (route === RECORDING_ROUTE) {
      // Recordings put new pods under their recorder profile; a debug container is not the workload's.
      if (isCreate) return reviewRecordedPodCreate(pod, await context(), this.recordings.activeIn(namespace));
      const before = parsePod(request.oldObject, "oldObject");
      if (typeof before === "string") return before;
      return reviewEphemeralContainers(pod, before, await context());
    }
    const mode = route;
    const scope: BindingScope | undefined = mode && { bindings: this.bindings.inNamespace(namespace), mode };
    if (isCreate) {
      if (!scope || scope.bindings.length === 0) return reviewPodCreate(pod, await context());
      const bound = reviewBoundPodCreate(pod, await context(), scope);
      if (!request.dryRun)
        this.bindingStatus.record(namespace, podName(namespace, pod), bound.outcomes, new Date());
      return bound.review;
    }
    const before = parsePod(request.oldObject, "oldObject");
    if (typeof before === "string") return before;
    if (!scope || scope.bindings.length === 0) return reviewEphemeralContainers(pod, before, await context());
    const bound = reviewBoundEphemeralContainers(pod, before, await context(), scope);
    if (!request.dryRun)
      this.bindingStatus.record(namespace, podName(namespace, pod), bound.outcomes, new Date());
    return bound.review;
  }

  private async nodeLabels(name: string): Promise<Record<string, string> | undefined> {
    try {
      const node = await this.client.get<V1Node>(`/api/v1/nodes/${encodeURIComponent(name)}`);
      return node.metadata?.labels ?? {};
    } catch (error) {
      if (isKubeError(error, 404)) return undefined;
      throw error;
    }
  }
}

/** The route of a namespace where ProfileRecordings run (docs/adr/0039-profile-recording.md). */
const RECORDING_ROUTE = Symbol("recording");
/** Which entry of the webhook configuration sent a review, beyond the plain one. */
type Route = BindingsNamespaceMode | typeof RECORDING_ROUTE;

/** Every character JSON.stringify leaves as it is beyond ASCII (it escapes only lone surrogates). */
const NON_ASCII = /[\u0080-\uffff]/g;

/**
 * A value as base64 of its UTF-8 JSON, as AdmissionResponse.patch is. Non-ASCII characters are written as
 * JSON \u escapes, so the text is ASCII, its UTF-8 is itself, and `btoa` encodes it: no Buffer per review.
 * `Buffer.from(json).toString("base64")` allocated one from Node's pool each time, and V8 counts those
 * as external memory it collects only on a full GC: a bare HTTPS server doing it under wrk grew from 55 to
 * 118-133 MiB resident (external memory 51-66 MiB), without it to 70 (2.7 MiB).
 */
export function base64Json(value: unknown): string {
  const json = JSON.stringify(value).replace(
    NON_ASCII,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  return btoa(json);
}

const TOO_LARGE = Symbol("too large");
const TOO_COMPLEX = Symbol("too complex");
const BUSY = Symbol("busy");

/**
 * The request body as text, with the bytes it holds of the large-body budget (to release once
 * answered); TOO_LARGE past MAX_BODY_BYTES (also when Content-Length says so, before reading); BUSY when
 * the budget has no room for it; undefined when the request broke off. The decoder keeps a UTF-8
 * character split between two chunks whole (decoding each chunk on its own turned it into two
 * replacement characters), and each chunk is decoded as it arrives, so its Buffer is garbage at once
 * instead of queued for an async iterator.
 */
export function readBody(
  req: IncomingMessage,
  budget: ByteBudget,
): Promise<
  { raw: string; budgeted: number } | typeof TOO_LARGE | typeof TOO_COMPLEX | typeof BUSY | undefined
> {
  return new Promise((resolve) => {
    if (Number(req.headers["content-length"]) > MAX_BODY_BYTES) return resolve(TOO_LARGE);
    const decoder = new StringDecoder("utf8");
    let raw = "";
    let size = 0;
    let budgeted = 0;
    /** `{`, `[` and `,` read so far, counted once the body is long enough to hold too many. */
    let structure: number | undefined;
    // Once the body is handed over, its budget is the caller's to release, whatever the socket does next.
    let settled = false;
    const settle = (result: Awaited<ReturnType<typeof readBody>>) => {
      if (settled) return;
      settled = true;
      if (typeof result !== "object") budget.release(budgeted);
      resolve(result);
    };
    const stop = (why: typeof TOO_LARGE | typeof TOO_COMPLEX | typeof BUSY) => {
      req.removeAllListeners("data");
      raw = "";
      settle(why);
    };
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) return stop(TOO_LARGE);
      const text = decoder.write(chunk);
      if (size > MAX_JSON_CONTAINERS_AND_ITEMS) {
        // What was read before is counted once, when the body first gets this long.
        structure = (structure ?? jsonStructureChars(raw)) + jsonStructureChars(text);
        if (structure > MAX_JSON_CONTAINERS_AND_ITEMS) return stop(TOO_COMPLEX);
      }
      const beyondSmall = Math.max(0, size - SMALL_BODY_BYTES) - budgeted;
      if (beyondSmall > 0) {
        if (!budget.take(beyondSmall)) return stop(BUSY);
        budgeted += beyondSmall;
      }
      raw += text;
    });
    req.on("end", () => settle({ raw: raw + decoder.end(), budgeted }));
    req.on("error", () => settle(undefined));
    req.on("close", () => {
      if (!req.complete) settle(undefined);
    });
  });
}

const COMMA = 0x2c;
const OPEN_BRACKET = 0x5b;
const OPEN_BRACE = 0x7b;

/** How many `,`, `[` and `{` a decoded text holds (as many as its UTF-8 bytes hold). */
export function jsonStructureChars(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === COMMA || c === OPEN_BRACKET || c === OPEN_BRACE) count++;
  }
  return count;
}

/** How a binding's status names a pod: namespace/name, or namespace/generateName* before it is named. */
function podName(namespace: string, pod: AdmittedPod): string {
  const name = pod.metadata?.name || `${pod.metadata?.generateName ?? ""}*`;
  return `${namespace}/${name}`;
}

/** The pod in `request.<which>`, or a message naming the field that is not what a Pod has there. */
function parsePod(input: unknown, which: "object" | "oldObject"): AdmittedPod | string {
  const parsed = AdmittedPodSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  return `request.${which}: ${formatZodIssues("Pod", objectNameOf(input), parsed.error)}`;
}
