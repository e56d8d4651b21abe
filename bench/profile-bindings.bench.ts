// What ProfileBindings cost the webhook's review (docs/adr/0036-profile-bindings.md): the real webhook
// on a real API server, AdmissionReviews sent straight to it one at a time over one keep-alive HTTPS
// connection, with no bindings in the cluster and then with 1,000 (10 in each of 100 labelled
// namespaces). Beside it, the pure review in this process (no HTTP), with the 1,000 bindings all in the
// pod's namespace: the matching itself, at its most.
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { compileBinding } from "../src/api/binding-match.ts";
import { API_VERSION, GROUP, VERSION, WEBHOOK_PATH } from "../src/api/constants.ts";
import type { AdmittedPod } from "../src/api/pod-profiles.ts";
import {
  BINDINGS_NAMESPACE_LABEL,
  BINDINGS_WEBHOOK_PATHS,
  BOUND_BY_ANNOTATION,
  PROFILE_BINDING_KIND,
  PROFILE_BINDING_PLURAL,
  type ProfileBindingSpec,
} from "../src/api/profile-binding.ts";
import { reviewBoundPodCreate } from "../src/webhook/bind.ts";
import { type ReviewContext, reviewPodCreate } from "../src/webhook/review.ts";
import { ControlPlane, waitFor } from "../test/harness/controlplane.ts";
import { installWebhook, podCreateReview } from "../test/harness/webhook.ts";
import { httpsText, timeReviews } from "./load/reviews.ts";
import { quantile, type Results } from "./stats.ts";

const repo = join(import.meta.dirname, "..");
const NAMESPACES = 100;
const PER_NAMESPACE = 10;
const REVIEWS_PER_ROUND = 1500;
const ROUNDS = 5;
const round3 = (n: number) => Math.round(n * 1000) / 1000;
const median = (values: readonly number[]) => quantile(values, 0.5);

/** Binding `i` of namespace `n`: pods labelled app=app-<i>, images of team-<n>-<i>. */
const bindingSpec = (n: number, i: number): ProfileBindingSpec => ({
  podSelector: { matchLabels: { app: `app-${i}` } },
  image: `registry.example/team-${n}-${i}/*`,
  seccompProfile: "bench",
});

const container = (image: string, securityContext?: object) => ({
  name: "app",
  image,
  ...(securityContext ? { securityContext } : {}),
});
/** Today's pod: it names its profile. */
const namingPod = (): AdmittedPod => ({
  metadata: { generateName: "named-", labels: { app: "app-7" } },
  spec: {
    containers: [
      container("registry.example/team-0-7/api:1.0", {
        seccompProfile: { type: "Localhost", localhostProfile: "lockstep/bench.json" },
      }),
    ],
  },
});
/** A pod as a chart writes it: no securityContext; binding 7 of its namespace gives it the profile. */
const plainPod = (n: number): AdmittedPod => ({
  metadata: { generateName: "plain-", labels: { app: "app-7" } },
  spec: { containers: [container(`registry.example/team-${n}-7/api:1.0`)] },
});

/** Rounds of each review in turn (interleaved, so a slow moment of the machine hits each alike). */
async function interleaved(
  port: number,
  cases: Record<string, { path: string; body: string }>,
): Promise<Record<string, { mean: number; p50: number; p99: number }>> {
  const rounds: Record<string, number[][]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (let r = 0; r < ROUNDS; r++)
    for (const [name, c] of Object.entries(cases))
      rounds[name]?.push(await timeReviews(port, c.path, c.body, REVIEWS_PER_ROUND));
  return Object.fromEntries(
    Object.entries(rounds).map(([name, rs]) => [
      name,
      {
        // The median round's mean: one round disturbed by another process does not decide.
        mean: median(rs.map((times) => times.reduce((a, b) => a + b, 0) / times.length)),
        p50: median(rs.map((times) => quantile(times, 0.5))),
        p99: median(rs.map((times) => quantile(times, 0.99))),
      },
    ]),
  );
}

/** The pure reviews, in this process: microseconds per review. */
export function pureReviewCosts(): Record<string, number> {
  const view = { terminating: false, installedNodes: 1 };
  const ctx: ReviewContext = {
    profile: (kind, name) => ({
      ...view,
      placement: { kind, name, revision: "10", version: "v", disabled: false },
    }),
  };
  const crowded = Array.from({ length: NAMESPACES * PER_NAMESPACE }, (_, k) =>
    compileBinding(`b-${k}`, bindingSpec(Math.floor(k / PER_NAMESPACE), k % PER_NAMESPACE)),
  );
  const ten = crowded.slice(0, PER_NAMESPACE);
  const time = (review: () => unknown) => {
    for (let i = 0; i < 2000; i++) review();
    const n = 20_000;
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) review();
    return Number(process.hrtime.bigint() - started) / 1e3 / n;
  };
  const pod = namingPod();
  const plain = plainPod(0);
  return {
    naming_pod: time(() => reviewPodCreate(pod, ctx)),
    bound_pod_10_bindings: time(() => reviewBoundPodCreate(plain, ctx, { bindings: ten, mode: "enabled" })),
    bound_pod_1000_bindings_one_namespace: time(() =>
      reviewBoundPodCreate(plain, ctx, { bindings: crowded, mode: "enabled" }),
    ),
  };
}

export async function run(): Promise<Results> {
  const results: Results = {};
  const pure = pureReviewCosts();
  for (const [name, us] of Object.entries(pure))
    results[`pure_review_${name}`] = { value: round3(us), unit: "us" };

  const cp = await ControlPlane.start();
  try {
    for (const file of ["crds/lockstep.dev_seccompprofiles.yaml", "crds/lockstep.dev_apparmorprofiles.yaml"])
      await cp.applyFile(join(repo, file));
    const webhook = await installWebhook(cp, { logLevel: "info" });
    const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
    const objects = cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
    await objects.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: "seccompprofiles",
      body: {
        apiVersion: API_VERSION,
        kind: "SeccompProfile",
        metadata: { name: "bench" },
        spec: { baseProfileName: "runtime/default" },
      },
    });
    for (let n = 0; n < NAMESPACES; n++)
      await core.createNamespace({
        body: { metadata: { name: `bench-${n}`, labels: { [BINDINGS_NAMESPACE_LABEL]: "enabled" } } },
      });
    const review = (pod: AdmittedPod, namespace: string) => podCreateReview(pod, { uid: "u", namespace });
    const bindPath = BINDINGS_WEBHOOK_PATHS.enabled;
    // Today's review: a pod that names its profile, on the plain route; and the same pod on the route of
    // a namespace labelled for bindings (where every pod comes), while no binding exists.
    await waitFor("the webhook to know the profile", async () => {
      await timeReviews(webhook.port, WEBHOOK_PATH, review(namingPod(), "bench-0"), 1);
      return true;
    });
    const none = await interleaved(webhook.port, {
      naming: { path: WEBHOOK_PATH, body: review(namingPod(), "bench-0") },
      naming_bind_route: { path: bindPath, body: review(namingPod(), "bench-0") },
    });

    const started = Date.now();
    // A namespace's bindings at a time, in parallel: 100 rounds of 10 creations.
    for (let n = 0; n < NAMESPACES; n++) {
      const creations: Promise<unknown>[] = [];
      for (let i = 0; i < PER_NAMESPACE; i++)
        creations.push(
          objects.createNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            namespace: `bench-${n}`,
            plural: PROFILE_BINDING_PLURAL,
            body: {
              apiVersion: API_VERSION,
              kind: PROFILE_BINDING_KIND,
              metadata: { name: `b-${i}` },
              spec: bindingSpec(n, i),
            },
          }),
        );
      await Promise.all(creations);
    }
    results.create_1000_bindings = { value: Date.now() - started, unit: "ms" };
    // The webhook's cache has them all once the last namespace's pod is bound.
    await waitFor("the webhook to cache every binding", async () => {
      const text = await httpsText(
        webhook.port,
        bindPath,
        review(plainPod(NAMESPACES - 1), `bench-${NAMESPACES - 1}`),
      );
      const patch = (JSON.parse(text) as { response?: { patch?: string } }).response?.patch;
      // The annotation is added as a member of a new annotations map: its key as written.
      return patch !== undefined && atob(patch).includes(BOUND_BY_ANNOTATION);
    });
    const thousand = await interleaved(webhook.port, {
      naming: { path: WEBHOOK_PATH, body: review(namingPod(), "bench-0") },
      naming_bind_route: { path: bindPath, body: review(namingPod(), "bench-0") },
      bound: { path: bindPath, body: review(plainPod(0), "bench-0") },
    });
    const put = (prefix: string, r: { mean: number; p50: number; p99: number }) => {
      results[`${prefix}_mean`] = { value: round3(r.mean), unit: "ms" };
      results[`${prefix}_p50`] = { value: round3(r.p50), unit: "ms" };
      results[`${prefix}_p99`] = { value: round3(r.p99), unit: "ms" };
    };
    const get = (r: Record<string, { mean: number; p50: number; p99: number }>, k: string) => {
      const v = r[k];
      if (!v) throw new Error(`no figure for ${k}`);
      return v;
    };
    put("review_naming_pod_no_bindings", get(none, "naming"));
    put("review_naming_pod_bind_route_no_bindings", get(none, "naming_bind_route"));
    put("review_naming_pod_1000_bindings", get(thousand, "naming"));
    put("review_naming_pod_bind_route_1000_bindings", get(thousand, "naming_bind_route"));
    put("review_bound_pod_1000_bindings", get(thousand, "bound"));
    const today = get(none, "naming").mean;
    results.ratio_naming_pod_1000_vs_no_bindings = {
      value: round3(get(thousand, "naming").mean / today),
      unit: "x",
    };
    results.ratio_bound_pod_1000_bindings_vs_naming_pod_no_bindings = {
      value: round3(get(thousand, "bound").mean / today),
      unit: "x",
    };
    await webhook.stop();
  } finally {
    await cp.stop();
  }
  return results;
}
