/**
 * What kind of artifact a referrer is (signature, SBOM, attestation), told by its artifactType,
 * and referrers grouped by artifactType for the manifest page.
 *
 * @module
 */
import type { Descriptor } from "../oci/manifest.ts";

/** The kinds of referrers the UI names. */
export type ArtifactKind = "signature" | "sbom" | "attestation" | "other";

/** Plural headings of each kind, in the order the page shows them. */
export const KIND_TITLES: Record<ArtifactKind, string> = {
  signature: "Signatures",
  sbom: "SBOMs",
  attestation: "Attestations",
  other: "Other artifacts",
};

const ORDER: ArtifactKind[] = ["signature", "sbom", "attestation", "other"];

/** The kind of an artifact type (media types of cosign, notation, sigstore, SPDX, ...). */
export function artifactKind(artifactType: string | undefined): ArtifactKind {
  const type = (artifactType ?? "").toLowerCase();
  if (/in-toto|dsse|attestation|provenance|slsa|vuln|openvex|sarif/.test(type)) {
    return "attestation";
  }
  if (/spdx|cyclonedx|syft|sbom/.test(type)) return "sbom";
  if (/signature|\.sig\b|sig\.v\d|sigstore|notary|cosign|jws|pgp|gpg/.test(type)) {
    return "signature";
  }
  return "other";
}

/** Referrers of one artifactType. */
export interface ReferrerGroup {
  /** The artifactType they share (`""` when they carry none). */
  artifactType: string;
  /** What kind of artifact that type is. */
  kind: ArtifactKind;
  /** The referrers, as the referrers API lists them. */
  referrers: Descriptor[];
}

/** Group referrers by artifactType: kinds in a fixed order, then types alphabetically. */
export function groupReferrers(descriptors: readonly Descriptor[]): ReferrerGroup[] {
  const groups = new Map<string, ReferrerGroup>();
  for (const descriptor of descriptors) {
    const artifactType = typeof descriptor.artifactType === "string" ? descriptor.artifactType : "";
    let group = groups.get(artifactType);
    if (!group) {
      group = { artifactType, kind: artifactKind(artifactType), referrers: [] };
      groups.set(artifactType, group);
    }
    group.referrers.push(descriptor);
  }
  return [...groups.values()].sort((a, b) =>
    ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind) ||
    (a.artifactType < b.artifactType ? -1 : a.artifactType > b.artifactType ? 1 : 0)
  );
}
