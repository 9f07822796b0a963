/**
 * k8s/: every manifest of the base and of the example overlay, validated against the Kubernetes
 * schemas (kubernetes-models), and the rules an operator relies on: probes, resources, non-root
 * read-only pods, graceful stops, autoscaling at 80 % CPU, who may reach what.
 *
 * There is no kubectl here, so the kustomizations are rendered by the small subset of kustomize they
 * use: resources (files and directories), namespace, images, and JSON-patch `replace` operations.
 */
import fs from "node:fs";
import path from "node:path";
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { Job } from "kubernetes-models/batch/v1";
import { Ingress, NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Namespace, Secret, Service } from "kubernetes-models/v1";
import { parseAllDocuments, parse } from "yaml";
import { parseSettings } from "../../config/settings";
import { settingNames } from "../support/settings-names";

const K8S = path.resolve(__dirname, "../../k8s");

type Json = Record<string, unknown>;

interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> };
  readonly spec?: Json;
  readonly data?: Record<string, string>;
  readonly stringData?: Record<string, string>;
  readonly file: string;
}

interface Kustomization {
  readonly resources?: readonly string[];
  readonly namespace?: string;
  readonly images?: ReadonlyArray<{ readonly name: string; readonly newName?: string; readonly newTag?: string }>;
  readonly patches?: ReadonlyArray<{ readonly target: { readonly kind: string; readonly name: string }; readonly patch: string }>;
}

const CLUSTER_SCOPED = new Set(["Namespace"]);

function readDocuments(file: string): Manifest[] {
  return parseAllDocuments(fs.readFileSync(file, "utf8")).map((document) => {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]?.message}`);
    return { ...(document.toJS() as Omit<Manifest, "file">), file: path.relative(K8S, file) };
  });
}

function replaceAt(target: Json, pointer: string, value: unknown): void {
  const keys = pointer.split("/").slice(1).map((key) => key.replace(/~1/g, "/").replace(/~0/g, "~"));
  const last = keys.pop();
  let node: Json = target;
  for (const key of keys) node = node[key] as Json;
  if (last === undefined || node === undefined || !(last in node)) throw new Error(`nothing to replace at ${pointer}`);
  node[last] = value;
}

function mapContainers(manifest: Manifest, update: (container: Json) => void): void {
  const podSpec = ((manifest.spec?.template as Json | undefined)?.spec ?? undefined) as Json | undefined;
  for (const list of ["containers", "initContainers"]) for (const container of (podSpec?.[list] as Json[] | undefined) ?? []) update(container);
}

/** The kustomization in `dir`, rendered. */
function render(dir: string): Manifest[] {
  const kustomization = parse(fs.readFileSync(path.join(dir, "kustomization.yaml"), "utf8")) as Kustomization;
  const manifests = (kustomization.resources ?? []).flatMap((resource) => {
    const target = path.resolve(dir, resource);
    return fs.statSync(target).isDirectory() ? render(target) : readDocuments(target);
  });
  return manifests.map((original) => {
    const manifest = structuredClone(original);
    if (kustomization.namespace !== undefined && !CLUSTER_SCOPED.has(manifest.kind)) {
      (manifest.metadata as { namespace?: string }).namespace = kustomization.namespace;
    }
    for (const image of kustomization.images ?? []) {
      mapContainers(manifest, (container) => {
        const [name] = String(container.image).split(":");
        if (name === image.name) container.image = `${image.newName ?? image.name}:${image.newTag ?? "latest"}`;
      });
    }
    for (const { target, patch } of kustomization.patches ?? []) {
      if (manifest.kind !== target.kind || manifest.metadata.name !== target.name) continue;
      for (const operation of parse(patch) as Array<{ op: string; path: string; value: unknown }>) {
        if (operation.op !== "replace") throw new Error(`this test renders only "replace" patches, not "${operation.op}"`);
        replaceAt(manifest as unknown as Json, operation.path, operation.value);
      }
    }
    return manifest;
  });
}

/** The schema of each apiVersion/kind the manifests may use; anything else is an error. */
const MODELS: Readonly<Record<string, new (data: never) => { validate(): void }>> = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "apps/v1/StatefulSet": StatefulSet,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "batch/v1/Job": Job,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "networking.k8s.io/v1/Ingress": Ingress,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
};

/** Validates against the model of its apiVersion and kind; throws what the schema rejects. */
function validate(manifest: Manifest): void {
  const { file, ...object } = manifest;
  const Model = MODELS[`${manifest.apiVersion}/${manifest.kind}`];
  if (Model === undefined) throw new Error(`${file}: no schema known here for ${manifest.apiVersion} ${manifest.kind}`);
  new Model(object as never).validate();
}

interface Container {
  readonly name: string;
  readonly image: string;
  readonly command?: readonly string[];
  readonly env?: ReadonlyArray<{ readonly name: string; readonly value?: string; readonly valueFrom?: unknown }>;
  readonly envFrom?: ReadonlyArray<{ readonly configMapRef?: { readonly name: string }; readonly secretRef?: { readonly name: string } }>;
  readonly readinessProbe?: Json & { httpGet?: { path: string; port: string | number } };
  readonly livenessProbe?: Json & { httpGet?: { path: string; port: string | number }; tcpSocket?: Json };
  readonly lifecycle?: { readonly preStop?: { readonly exec?: { readonly command: readonly string[] } } };
  readonly resources?: { readonly requests?: Record<string, string>; readonly limits?: Record<string, string> };
  readonly securityContext?: { readonly runAsNonRoot?: boolean; readonly readOnlyRootFilesystem?: boolean; readonly allowPrivilegeEscalation?: boolean };
  readonly volumeMounts?: ReadonlyArray<{ readonly name: string; readonly mountPath: string }>;
}

interface PodSpec {
  readonly terminationGracePeriodSeconds?: number;
  readonly securityContext?: { readonly runAsNonRoot?: boolean; readonly runAsUser?: number };
  readonly containers: readonly Container[];
  readonly volumes?: ReadonlyArray<{ readonly name: string; readonly emptyDir?: Json }>;
}

const podSpecOf = (manifest: Manifest): PodSpec => (manifest.spec?.template as { spec: PodSpec }).spec;
const ofKind = (manifests: readonly Manifest[], kind: string): Manifest[] => manifests.filter((manifest) => manifest.kind === kind);

describe.each([
  ["base", path.join(K8S, "base")],
  ["example overlay", path.join(K8S, "overlays/example")],
])("k8s %s", (_label, dir) => {
  const manifests = render(dir);
  const deployments = ofKind(manifests, "Deployment");
  const configMap = manifests.find((manifest) => manifest.kind === "ConfigMap" && manifest.metadata.name === "shoal-config");
  const secret = manifests.find((manifest) => manifest.kind === "Secret" && manifest.metadata.name === "shoal-secrets");
  const shoalPods = [...deployments, ...ofKind(manifests, "Job").filter((job) => job.metadata.name === "migrate")];

  it("validates every manifest against the Kubernetes schemas", () => {
    expect(manifests.length).toBeGreaterThan(10);
    const failures = manifests.flatMap((manifest) => {
      try {
        validate(manifest);
        return [];
      } catch (error) {
        return [`${manifest.file} ${manifest.kind}/${manifest.metadata.name}: ${(error as Error).message.split("\n").slice(0, 3).join(" ")}`];
      }
    });
    expect(failures).toEqual([]);
  });

  it("has one Deployment per role, all from the one image", () => {
    expect(deployments.map((deployment) => deployment.metadata.name).sort()).toEqual(["api", "core", "image-worker", "transcoder"]);
    const images = new Set(shoalPods.flatMap((manifest) => podSpecOf(manifest).containers.map((container) => container.image)));
    expect(images.size).toBe(1);
  });

  it("gives every Deployment readiness and liveness probes, resource requests and limits", () => {
    for (const deployment of deployments) {
      for (const container of podSpecOf(deployment).containers) {
        const name = deployment.metadata.name;
        expect({ name, readiness: container.readinessProbe !== undefined, liveness: container.livenessProbe !== undefined }).toEqual({ name, readiness: true, liveness: true });
        expect({ name, requests: Object.keys(container.resources?.requests ?? {}).sort(), limits: Object.keys(container.resources?.limits ?? {}).sort() }).toEqual({
          name,
          requests: ["cpu", "memory"],
          limits: ["cpu", "memory"],
        });
      }
    }
    const api = podSpecOf(deployments.find((deployment) => deployment.metadata.name === "api") as Manifest).containers[0];
    expect(api?.readinessProbe?.httpGet?.path).toBe("/api/health/ready");
    expect(api?.livenessProbe?.httpGet?.path).toBe("/api/health/live");
    for (const role of ["core", "image-worker", "transcoder"]) {
      const container = podSpecOf(deployments.find((deployment) => deployment.metadata.name === role) as Manifest).containers[0];
      expect({ role, readiness: container?.readinessProbe?.httpGet }).toEqual({ role, readiness: { path: "/ready", port: "metrics" } });
    }
  });

  it("runs every Shoal pod as non-root on a read-only root filesystem, temporary files in an emptyDir", () => {
    for (const manifest of shoalPods) {
      const pod = podSpecOf(manifest);
      const name = manifest.metadata.name;
      expect({ name, runAsNonRoot: pod.securityContext?.runAsNonRoot, uid: pod.securityContext?.runAsUser }).toEqual({ name, runAsNonRoot: true, uid: expect.any(Number) });
      expect(pod.securityContext?.runAsUser).toBeGreaterThan(0);
      for (const container of pod.containers) {
        expect({ name, security: container.securityContext }).toMatchObject({
          name,
          security: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false },
        });
        const tmpMount = container.volumeMounts?.find((mount) => mount.mountPath === "/tmp");
        expect(pod.volumes?.find((volume) => volume.name === tmpMount?.name)?.emptyDir).toBeDefined();
        expect(container.env?.find((variable) => variable.name === "TMPDIR")?.value).toBe("/tmp");
      }
    }
    expect(configMap?.data?.SHOAL_DATA_DIR).toMatch(/^\/tmp\//);
  });

  it("gives every Deployment a preStop pause and more grace than SHUTDOWN_TIMEOUT_SECONDS plus that pause", () => {
    const shutdownTimeout = Number(configMap?.data?.SHUTDOWN_TIMEOUT_SECONDS);
    expect(shutdownTimeout).toBeGreaterThan(0);
    for (const deployment of deployments) {
      const pod = podSpecOf(deployment);
      for (const container of pod.containers) {
        const [command, seconds] = container.lifecycle?.preStop?.exec?.command ?? [];
        expect({ name: deployment.metadata.name, command }).toEqual({ name: deployment.metadata.name, command: "sleep" });
        expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(shutdownTimeout + Number(seconds));
      }
    }
  });

  it("autoscales api, image-worker and transcoder at 80 % CPU, scaling down after a stabilization window", () => {
    const hpas = ofKind(manifests, "HorizontalPodAutoscaler");
    expect(hpas.every((hpa) => hpa.apiVersion === "autoscaling/v2")).toBe(true);
    const targets = hpas.map((hpa) => (hpa.spec?.scaleTargetRef as { kind: string; name: string }).name);
    expect(targets.sort()).toEqual(["api", "image-worker", "transcoder"]);
    for (const hpa of hpas) {
      expect(hpa.spec?.metrics).toEqual([{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 80 } } }]);
      expect((hpa.spec?.behavior as { scaleDown?: { stabilizationWindowSeconds?: number } }).scaleDown?.stabilizationWindowSeconds).toBeGreaterThan(0);
    }
  });

  it("keeps a PodDisruptionBudget over each Deployment's pods", () => {
    const budgets = ofKind(manifests, "PodDisruptionBudget");
    for (const deployment of deployments) {
      const podLabels = (deployment.spec?.template as { metadata: { labels: Record<string, string> } }).metadata.labels;
      const covering = budgets.filter((budget) =>
        Object.entries((budget.spec?.selector as { matchLabels: Record<string, string> }).matchLabels).every(([key, value]) => podLabels[key] === value),
      );
      expect({ name: deployment.metadata.name, budgets: covering.length }).toEqual({ name: deployment.metadata.name, budgets: 1 });
    }
  });

  it("sets only settings Shoal knows, and a complete cluster configuration for every role", () => {
    const known = settingNames();
    const shared = { ...configMap?.data, ...secret?.stringData };
    expect(Object.keys(shared).filter((name) => !known.has(name))).toEqual([]);
    for (const manifest of shoalPods) {
      const container = podSpecOf(manifest).containers[0] as Container;
      expect(container.envFrom).toEqual([{ configMapRef: { name: "shoal-config" } }, { secretRef: { name: "shoal-secrets" } }]);
      const own = Object.fromEntries((container.env ?? []).map((variable) => [variable.name, variable.value ?? "from-field"]));
      expect(Object.keys(own).filter((name) => !known.has(name) && name !== "TMPDIR")).toEqual([]);
      expect(parseSettings({ ...shared, ...own }).mode).toBe("cluster");
    }
  });

  it("lets only the ingress controller reach the api pods, and only Shoal's pods reach the datastores", () => {
    const policies = ofKind(manifests, "NetworkPolicy");
    const denyAll = policies.find((policy) => JSON.stringify(policy.spec?.podSelector) === "{}");
    expect(denyAll?.spec).toEqual({ podSelector: {}, policyTypes: ["Ingress"] });

    const selects = (policy: Manifest, labels: Record<string, string>) =>
      Object.entries((policy.spec?.podSelector as { matchLabels?: Record<string, string> }).matchLabels ?? {}).every(([key, value]) => labels[key] === value) &&
      policy !== denyAll;
    const apiLabels = (deployments.find((deployment) => deployment.metadata.name === "api")?.spec?.template as { metadata: { labels: Record<string, string> } }).metadata.labels;
    const apiHttpSources = policies
      .filter((policy) => selects(policy, apiLabels))
      .flatMap((policy) => (policy.spec?.ingress as Array<{ from: Json[]; ports: Array<{ port: number }> }>).filter((rule) => rule.ports.some((port) => port.port === 3000)))
      .flatMap((rule) => rule.from);
    expect(apiHttpSources).toEqual([
      {
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ingress-nginx" } },
        podSelector: { matchLabels: { "app.kubernetes.io/name": "ingress-nginx" } },
      },
    ]);

    const datastorePolicy = policies.find((policy) => selects(policy, { "app.kubernetes.io/component": "datastore" }));
    expect((datastorePolicy?.spec?.ingress as Array<{ from: Json[] }>)[0]?.from).toContainEqual({ podSelector: { matchLabels: { "app.kubernetes.io/name": "shoal" } } });
    for (const statefulSet of ofKind(manifests, "StatefulSet")) {
      const labels = (statefulSet.spec?.template as { metadata: { labels: Record<string, string> } }).metadata.labels;
      expect({ name: statefulSet.metadata.name, component: labels["app.kubernetes.io/component"] }).toEqual({ name: statefulSet.metadata.name, component: "datastore" });
    }
  });

  it("routes the Ingress to the api Service with upload-sized bodies, long timeouts and a sticky cookie", () => {
    const [ingress] = ofKind(manifests, "Ingress");
    const annotations = ingress?.metadata.annotations ?? {};
    expect(annotations["nginx.ingress.kubernetes.io/proxy-body-size"]).toMatch(/^\d+[mg]$/);
    expect(Number(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"])).toBeGreaterThanOrEqual(3600);
    expect(Number(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"])).toBeGreaterThanOrEqual(3600);
    expect(annotations["nginx.ingress.kubernetes.io/affinity"]).toBe("cookie");
    const backend = JSON.stringify(ingress?.spec?.rules);
    expect(backend).toContain('"service":{"name":"api"');
    expect(ofKind(manifests, "Service").map((service) => service.metadata.name)).toContain("api");
  });

  it("puts everything in the shoal namespace, and StatefulSets only where marked for a local trial", () => {
    for (const manifest of manifests.filter((each) => each.kind !== "Namespace")) expect({ name: manifest.metadata.name, namespace: manifest.metadata.namespace }).toEqual({ name: manifest.metadata.name, namespace: "shoal" });
    for (const statefulSet of ofKind(manifests, "StatefulSet")) {
      expect(statefulSet.file).toMatch(/^overlays\//);
      expect(statefulSet.metadata.annotations?.["shoal.example.org/local-trial-only"]).toBe("true");
    }
  });
});

it("the example overlay sets the image and runs the datastores its ConfigMap and Secret name", () => {
  const manifests = render(path.join(K8S, "overlays/example"));
  expect(new Set(ofKind(manifests, "Deployment").map((deployment) => podSpecOf(deployment).containers[0]?.image))).toEqual(new Set(["shoal:local"]));
  const services = new Set(ofKind(manifests, "Service").map((service) => service.metadata.name));
  const configMap = manifests.find((manifest) => manifest.kind === "ConfigMap" && manifest.metadata.name === "shoal-config");
  const secret = manifests.find((manifest) => manifest.kind === "Secret" && manifest.metadata.name === "shoal-secrets");
  for (const url of [configMap?.data?.NATS_URL, configMap?.data?.REDIS_URL, configMap?.data?.S3_ENDPOINT, secret?.stringData?.MYSQL_PRIMARY_URL]) {
    expect(services).toContain(new URL(url ?? "").hostname);
  }
});
