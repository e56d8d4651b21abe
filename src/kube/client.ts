// A thin REST client for Lockstep's long-running components (agent, controller, webhook).
//
// Why not @kubernetes/client-node here: importing it loads every generated API model, about 80 MiB
// of resident memory before the first request, and the agent runs on every node of a cluster
// (docs/adr/0013-thin-kube-client.md has the measurements). The components make a handful of calls:
// list and watch, get, create, patch, delete. This client does exactly those with node:https, and
// follows client-go's rules for credentials so it behaves as every other Kubernetes client does:
//   - KUBECONFIG (a colon-separated list, merged with the first file winning), then ~/.kube/config,
//     then the in-cluster service account (the order client-node's loadFromDefault uses);
//   - a bearer token file is re-read once a minute (client-go's cached file token source), so the
//     kubelet's rotation of projected service-account tokens is picked up without a restart;
//   - certificate-authority(-data), client-certificate(-data)/client-key(-data), token, tokenFile.
// Credential plugins (`exec`, `auth-provider`) are refused with a clear message: no component needs
// them in a cluster, and running a program from a kubeconfig is not something an agent should do.
import { existsSync, readFileSync } from "node:fs";
import type { ClientRequest } from "node:http";
import { Agent, request as httpsRequest, type RequestOptions } from "node:https";
import { homedir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import * as z from "zod";
import { commonJsExports } from "./commonjs.ts";
import { parseRetryAfterSeconds } from "./retry-after.ts";

export const IN_CLUSTER_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token";
export const IN_CLUSTER_CA_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
/** client-go re-reads a bearer token file after this long (transport.NewCachedFileTokenSource). */
export const TOKEN_FILE_MAX_AGE_MS = 60_000;
/**
 * An API answer larger than this is refused rather than buffered. Lists are paged to half of it by the
 * largest object a collection can hold (src/kube/informer.ts), so only an object larger than its
 * collection declares reaches it.
 */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/**
 * A half-open connection (the API server's host gone, a NAT that dropped the flow) answers nothing and
 * reports nothing, and would leave a sync or a cache waiting for ever: every request gives up after
 * these. Connecting (TCP and TLS) takes milliseconds on a working network; a request, a list page of
 * 500 included, answers in well under a second.
 */
export const CONNECT_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 60_000;

/** Where to connect and how to prove who we are: what a kubeconfig context or the pod resolves to. */
export const ClientConfigSchema = z.strictObject({
  server: z.url({ protocol: /^https?$/ }),
  ca: z.string().optional(),
  clientCertificate: z.string().optional(),
  clientKey: z.string().optional(),
  token: z.string().optional(),
  tokenFile: z.string().optional(),
  insecureSkipTlsVerify: z.boolean().optional(),
  /** The context's namespace, for clients that want a default. */
  namespace: z.string().optional(),
});
export type ClientConfig = z.infer<typeof ClientConfigSchema>;

// The part of the kubeconfig format this client understands; anything else is ignored, as kubectl does.
const NamedCluster = z.object({
  name: z.string(),
  cluster: z.object({
    server: z.string(),
    "certificate-authority": z.string().optional(),
    "certificate-authority-data": z.string().optional(),
    "insecure-skip-tls-verify": z.boolean().optional(),
  }),
});
const NamedUser = z.object({
  name: z.string(),
  user: z
    .object({
      token: z.string().optional(),
      tokenFile: z.string().optional(),
      "client-certificate": z.string().optional(),
      "client-certificate-data": z.string().optional(),
      "client-key": z.string().optional(),
      "client-key-data": z.string().optional(),
      exec: z.unknown().optional(),
      "auth-provider": z.unknown().optional(),
    })
    .nullish(),
});
const NamedContext = z.object({
  name: z.string(),
  context: z.object({ cluster: z.string(), user: z.string().optional(), namespace: z.string().optional() }),
});
const KubeconfigSchema = z.object({
  clusters: z.array(NamedCluster).nullish(),
  users: z.array(NamedUser).nullish(),
  contexts: z.array(NamedContext).nullish(),
  "current-context": z.string().optional(),
});
type Kubeconfig = z.infer<typeof KubeconfigSchema>;

/** The configuration the way client-node's loadFromDefault finds it, with the same precedence. */
export async function loadClientConfig(env: NodeJS.ProcessEnv = process.env): Promise<ClientConfig> {
  const list = env.KUBECONFIG?.split(":").filter((p) => p !== "") ?? [];
  if (list.length > 0) return configFromKubeconfigFiles(list);
  const home = join(env.HOME ?? homedir(), ".kube", "config");
  if (existsSync(home)) return configFromKubeconfigFiles([home]);
  if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) return inClusterConfig(env);
  throw new Error(
    "no Kubernetes configuration: set KUBECONFIG, create ~/.kube/config, or run in a pod with a service account",
  );
}

/** In a pod: the API server's service address, the projected token (re-read) and the cluster CA. */
export function inClusterConfig(
  env: NodeJS.ProcessEnv = process.env,
  files: { token: string; ca: string } = { token: IN_CLUSTER_TOKEN_FILE, ca: IN_CLUSTER_CA_FILE },
): ClientConfig {
  const host = env.KUBERNETES_SERVICE_HOST ?? "";
  // An IPv6 service address needs brackets in a URL.
  const hostPart = host.includes(":") ? `[${host}]` : host;
  return ClientConfigSchema.parse({
    server: `https://${hostPart}:${env.KUBERNETES_SERVICE_PORT}`,
    ca: readFileSync(files.ca, "utf8"),
    tokenFile: files.token,
  });
}

export async function configFromKubeconfigFiles(paths: readonly string[]): Promise<ClientConfig> {
  // yaml is loaded only here: a pod using its service account never pays for a YAML parser.
  const { parse } = commonJsExports(await import("yaml"));
  const merged: Required<{ [K in keyof Kubeconfig]: NonNullable<Kubeconfig[K]> }> = {
    clusters: [],
    users: [],
    contexts: [],
    "current-context": "",
  };
  const baseOf = new Map<object, string>();
  for (const path of paths) {
    if (!existsSync(path)) continue;
    const parsed = KubeconfigSchema.safeParse(parse(readFileSync(path, "utf8")));
    if (!parsed.success) throw new Error(`kubeconfig ${path}: ${z.prettifyError(parsed.error)}`);
    const file = parsed.data;
    // client-go merges kubeconfig files with the first file's entries winning.
    for (const key of ["clusters", "users", "contexts"] as const)
      for (const entry of file[key] ?? [])
        if (!(merged[key] as { name: string }[]).some((e) => e.name === entry.name)) {
          (merged[key] as { name: string }[]).push(entry);
          baseOf.set(entry, dirname(path));
        }
    if (!merged["current-context"] && file["current-context"])
      merged["current-context"] = file["current-context"];
  }
  const contextName = merged["current-context"];
  const context = merged.contexts.find((c) => c.name === contextName);
  if (!context)
    throw new Error(`kubeconfig (${paths.join(":")}): current context "${contextName}" not found`);
  const cluster = merged.clusters.find((c) => c.name === context.context.cluster);
  if (!cluster) throw new Error(`kubeconfig: cluster "${context.context.cluster}" not found`);
  const user = merged.users.find((u) => u.name === context.context.user);
  const credentials = user?.user ?? {};
  if (credentials.exec !== undefined || credentials["auth-provider"] !== undefined)
    throw new Error(
      `kubeconfig user "${user?.name}": exec and auth-provider credential plugins are not supported; use a token, a token file or a client certificate`,
    );
  // Relative file references are relative to the kubeconfig file that named them, as in client-go.
  const fileIn = (entry: object, path: string | undefined) =>
    path === undefined ? undefined : isAbsolute(path) ? path : join(baseOf.get(entry) ?? ".", path);
  const inline = (data: string | undefined) =>
    data === undefined ? undefined : Buffer.from(data, "base64").toString("utf8");
  const read = (path: string | undefined) => (path === undefined ? undefined : readFileSync(path, "utf8"));
  const c = cluster.cluster;
  return ClientConfigSchema.parse({
    server: c.server,
    ca: inline(c["certificate-authority-data"]) ?? read(fileIn(cluster, c["certificate-authority"])),
    insecureSkipTlsVerify: c["insecure-skip-tls-verify"],
    clientCertificate:
      inline(credentials["client-certificate-data"]) ??
      (user && read(fileIn(user, credentials["client-certificate"]))),
    clientKey:
      inline(credentials["client-key-data"]) ?? (user && read(fileIn(user, credentials["client-key"]))),
    token: credentials.token,
    tokenFile: user && fileIn(user, credentials.tokenFile),
    namespace: context.context.namespace,
  });
}

const StatusSchema = z.object({
  message: z.string().optional(),
  reason: z.string().optional(),
  code: z.number().optional(),
});

/**
 * The API server's Status in an error answer's body (a JSON string or already parsed); empty for a
 * body that is not one (a proxy's HTML error page, say). Shared with errors.ts, which reads
 * client-node's exceptions.
 */
export function readStatus(body: unknown): z.infer<typeof StatusSchema> {
  try {
    return StatusSchema.parse(typeof body === "string" ? JSON.parse(body) : body);
  } catch {
    return {};
  }
}

/** A non-2xx answer from the API server, with its Status message when it sent one. */
export class KubeApiError extends Error {
  readonly code: number;
  readonly reason: string | undefined;
  /** The answer's `Retry-After` in seconds (a 429 or 503 for load), which says when to try again. */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: number, body: string, what: string, retryAfter?: string | readonly string[]) {
    const status = readStatus(body);
    super(status.message ?? `HTTP ${code} from ${what}`);
    this.name = "KubeApiError";
    this.code = code;
    this.reason = status.reason;
    this.retryAfterSeconds = parseRetryAfterSeconds(retryAfter);
  }
}

export type PatchType = "merge" | "json" | "strategic" | "apply";
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
  apply: "application/apply-patch+yaml",
};

/** client-go's metadata client asks for this: objects arrive with metadata only, no spec or status. */
export const METADATA_ONLY_ACCEPT = {
  list: "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
  watch: "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json",
} as const;

export interface CallOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  accept?: string;
  signal?: AbortSignal;
  /** Give up when the whole answer has not arrived within this long (default REQUEST_TIMEOUT_MS). */
  timeoutMs?: number;
}

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

export interface KubeClientOptions {
  /** How long a token file's content is used before it is read again (client-go: one minute). */
  tokenFileMaxAgeMs?: number;
  /** Told of every answer (verb GET, POST, ..., or WATCH; HTTP status, 0 for no answer): for metrics. */
  onResponse?: (verb: string, code: number) => void;
  /** How long connecting may take (default CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number;
  /** The largest answer buffered (MAX_RESPONSE_BYTES); smaller in tests. */
  maxResponseBytes?: number;
}

export class KubeClient {
  readonly config: ClientConfig;
  private readonly agent: Agent;
  private readonly url: URL;
  private readonly tokenFileMaxAgeMs: number;
  private cachedToken: { value: string; readAt: number } | undefined;
  /** The largest answer this client buffers; list pages are sized below it. */
  readonly maxResponseBytes: number;

  private readonly onResponse: ((verb: string, code: number) => void) | undefined;
  private readonly connectTimeoutMs: number;

  constructor(config: ClientConfig, options: KubeClientOptions = {}) {
    this.config = ClientConfigSchema.parse(config);
    this.connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    this.tokenFileMaxAgeMs = options.tokenFileMaxAgeMs ?? TOKEN_FILE_MAX_AGE_MS;
    this.onResponse = options.onResponse;
    this.maxResponseBytes = options.maxResponseBytes ?? MAX_RESPONSE_BYTES;
    this.url = new URL(this.config.server);
    // One keep-alive pool: a component's requests share a few connections, as client-go's transport does.
    this.agent = new Agent({
      keepAlive: true,
      ca: this.config.ca,
      cert: this.config.clientCertificate,
      key: this.config.clientKey,
      rejectUnauthorized: this.config.insecureSkipTlsVerify !== true,
    });
  }

  static async fromEnvironment(
    options: KubeClientOptions = {},
    env: NodeJS.ProcessEnv = process.env,
  ): Promise<KubeClient> {
    return new KubeClient(await loadClientConfig(env), options);
  }

  /** Closes idle keep-alive connections, so a stopping process exits promptly. */
  close(): void {
    this.agent.destroy();
  }

  private bearerToken(): string | undefined {
    const { token, tokenFile } = this.config;
    if (tokenFile === undefined) return token;
    const now = Date.now();
    if (this.cachedToken === undefined || now - this.cachedToken.readAt > this.tokenFileMaxAgeMs) {
      try {
        this.cachedToken = { value: readFileSync(tokenFile, "utf8").trim(), readAt: now };
      } catch (error) {
        // Keep using the last token: a rotation writes a new file atomically, a read error is transient.
        if (this.cachedToken === undefined) throw error;
      }
    }
    return this.cachedToken?.value;
  }

  private requestOptions(method: string, path: string, opts: CallOptions): RequestOptions {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) search.set(k, String(v));
    const qs = search.toString();
    const headers: Record<string, string> = { Accept: opts.accept ?? "application/json" };
    const token = this.bearerToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (opts.body !== undefined) headers["Content-Type"] = opts.contentType ?? "application/json";
    return {
      method,
      protocol: this.url.protocol,
      hostname: this.url.hostname.replace(/^\[|\]$/g, ""),
      port: this.url.port,
      path: `${this.url.pathname.replace(/\/$/, "")}${path}${qs ? `?${qs}` : ""}`,
      headers,
      agent: this.agent,
      signal: opts.signal,
    };
  }

  /** One request, answered with the parsed JSON body; a non-2xx answer throws KubeApiError. */
  request<T>(method: string, path: string, opts: CallOptions = {}): Promise<T> {
    const options = this.requestOptions(method, path, opts);
    const payload =
      opts.body === undefined
        ? undefined
        : typeof opts.body === "string"
          ? opts.body
          : JSON.stringify(opts.body);
    const timeoutMs = opts.timeoutMs ?? REQUEST_TIMEOUT_MS;
    return new Promise<T>((resolve, reject) => {
      const req = httpsRequest(options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.maxResponseBytes) {
            req.destroy(new Error(`${method} ${path}: answer larger than ${this.maxResponseBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const code = res.statusCode ?? 0;
          this.onResponse?.(method, code);
          if (code < 200 || code >= 300)
            return reject(new KubeApiError(code, text, `${method} ${path}`, res.headers["retry-after"]));
          try {
            resolve((text === "" ? undefined : JSON.parse(text)) as T);
          } catch (error) {
            reject(error);
          }
        });
        res.on("error", reject);
      });
      req.on("error", (error) => {
        this.onResponse?.(method, 0);
        reject(error);
      });
      this.limitConnecting(req, `${method} ${path}`);
      const deadline = setTimeout(
        () => req.destroy(new Error(`${method} ${path}: no complete answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      req.on("close", () => clearTimeout(deadline));
      req.end(payload);
    });
  }

  /** Fails the request when its new connection is not up (TCP and TLS) within connectTimeoutMs. */
  private limitConnecting(req: ClientRequest, what: string): void {
    req.on("socket", (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(
        () => req.destroy(new Error(`${what}: could not connect within ${this.connectTimeoutMs} ms`)),
        this.connectTimeoutMs,
      );
      const connected = () => clearTimeout(timer);
      socket.once(this.url.protocol === "https:" ? "secureConnect" : "connect", connected);
      socket.once("close", connected);
    });
  }

  get<T>(path: string, opts?: CallOptions): Promise<T> {
    return this.request<T>("GET", path, opts);
  }

  create<T>(path: string, body: unknown, opts?: CallOptions): Promise<T> {
    return this.request<T>("POST", path, { ...opts, body });
  }

  replace<T>(path: string, body: unknown, opts?: CallOptions): Promise<T> {
    return this.request<T>("PUT", path, { ...opts, body });
  }

  patch<T>(path: string, type: PatchType, body: unknown, opts?: CallOptions): Promise<T> {
    return this.request<T>("PATCH", path, { ...opts, body, contentType: PATCH_CONTENT_TYPE[type] });
  }

  delete<T>(path: string, opts?: CallOptions): Promise<T> {
    return this.request<T>("DELETE", path, opts);
  }

  /**
   * Streams a watch: calls onEvent for each event until the server ends the stream (its timeout),
   * the signal aborts, or the connection fails (rejects). A non-2xx answer rejects with KubeApiError.
   * A stream on which nothing arrives for `idleTimeoutMs` (set it longer than the `timeoutSeconds` the
   * server was asked to close the stream after) is taken for a half-open connection and rejects.
   */
  watch<T>(
    path: string,
    opts: CallOptions & {
      onEvent: (event: WatchEvent<T>) => void;
      onConnect?: () => void;
      idleTimeoutMs: number;
    },
  ): Promise<void> {
    const options = this.requestOptions("GET", path, { ...opts, query: { ...opts.query, watch: true } });
    return new Promise<void>((resolve, reject) => {
      let idle: NodeJS.Timeout | undefined;
      const stillAlive = () => {
        clearTimeout(idle);
        idle = setTimeout(
          () =>
            req.destroy(
              new Error(
                `watch ${path}: nothing received for ${opts.idleTimeoutMs} ms (a half-open connection?)`,
              ),
            ),
          opts.idleTimeoutMs,
        );
      };
      const req = httpsRequest(options, (res) => {
        stillAlive();
        res.on("data", stillAlive);
        const code = res.statusCode ?? 0;
        this.onResponse?.("WATCH", code);
        if (code < 200 || code >= 300) {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            reject(
              new KubeApiError(
                code,
                Buffer.concat(chunks).toString("utf8"),
                `watch ${path}`,
                res.headers["retry-after"],
              ),
            ),
          );
          return;
        }
        opts.onConnect?.();
        let pending = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          pending += chunk;
          let newline = pending.indexOf("\n");
          while (newline !== -1) {
            const line = pending.slice(0, newline);
            pending = pending.slice(newline + 1);
            if (line.trim() !== "") {
              try {
                opts.onEvent(JSON.parse(line) as WatchEvent<T>);
              } catch (error) {
                req.destroy(error instanceof Error ? error : new Error(String(error)));
                return;
              }
            }
            newline = pending.indexOf("\n");
          }
        });
        res.on("end", () => resolve());
        res.on("error", reject);
        res.on("aborted", () => reject(new Error(`watch ${path}: connection aborted`)));
      });
      req.on("error", (error) => {
        if (opts.signal?.aborted) resolve();
        else reject(error);
      });
      req.on("close", () => clearTimeout(idle));
      this.limitConnecting(req, `watch ${path}`);
      stillAlive();
      req.end();
    });
  }
}
