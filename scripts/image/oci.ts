// The OCI image layout's documents (image-spec v1.1), as `make image` writes them and as its tests read
// them back. Pure: no file is touched here.
import { createHash } from "node:crypto";
import * as z from "zod";

export const MEDIA_TYPES = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  // Uncompressed: its digest is its diff ID, and the same bytes in give the same digest out with no
  // compressor version in the way (gzip output depends on the zlib that wrote it).
  layer: "application/vnd.oci.image.layer.v1.tar",
} as const;

export const DescriptorSchema = z.object({
  mediaType: z.string(),
  digest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type Descriptor = z.infer<typeof DescriptorSchema>;

/** What an image runs on, as an image index's entries and an image's config say it. */
export const PlatformSchema = z.object({
  architecture: z.enum(["amd64", "arm64"]),
  os: z.literal("linux"),
  variant: z.string().optional(),
});
export type OciPlatform = z.infer<typeof PlatformSchema>;

export const ImageConfigSchema = z.object({
  architecture: PlatformSchema.shape.architecture,
  os: z.literal("linux"),
  variant: z.string().optional(),
  config: z.object({
    User: z.string(),
    Env: z.array(z.string()),
    Entrypoint: z.array(z.string()),
    Cmd: z.array(z.string()),
    WorkingDir: z.string(),
  }),
  rootfs: z.object({ type: z.literal("layers"), diff_ids: z.array(z.string()) }),
  history: z.array(z.object({ created_by: z.string(), comment: z.string().optional() })),
});
export type ImageConfig = z.infer<typeof ImageConfigSchema>;

export const ManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.literal(MEDIA_TYPES.manifest),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema),
});
export type Manifest = z.infer<typeof ManifestSchema>;

export const IndexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.literal(MEDIA_TYPES.index),
  manifests: z.array(DescriptorSchema.extend({ platform: PlatformSchema.optional() })).min(1),
});
export type Index = z.infer<typeof IndexSchema>;

export const OCI_LAYOUT = { imageLayoutVersion: "1.0.0" } as const;

export function sha256(content: Buffer | string): string {
  return `sha256:${createHash("sha256").update(content).digest("hex")}`;
}

export function descriptorOf(mediaType: string, content: Buffer): Descriptor {
  return { mediaType, digest: sha256(content), size: content.length };
}

/** JSON as stored: no whitespace, keys in the order written, so the same document has the same digest. */
export function canonicalJson(document: unknown): Buffer {
  return Buffer.from(JSON.stringify(document));
}

/** A multi-platform image: one manifest per platform, as a registry serves it under one tag. */
export function imageIndex(manifests: readonly { manifest: Descriptor; platform: OciPlatform }[]): Index {
  return {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: manifests.map(({ manifest, platform }) => ({ ...manifest, platform })),
  };
}

/**
 * The index of a one-image layout (its one entry a manifest, or an image index for several platforms). Both annotations name the image: the OCI one for tools that read
 * the spec, containerd's so `ctr images import` names the image with the full reference (it otherwise
 * reads `ref.name` as a tag and needs `--base-name`).
 */
export function indexFor(manifest: Descriptor, reference: string): Index {
  return {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: [
      {
        ...manifest,
        annotations: {
          "io.containerd.image.name": reference,
          "org.opencontainers.image.ref.name": reference,
        },
      },
    ],
  };
}
