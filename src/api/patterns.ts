// Kubernetes' own syntax for names and labels (k8s.io/apimachinery/pkg/util/validation), written once.
// Each pattern is a string that is valid both as a JavaScript RegExp and as RE2 (the API server's
// OpenAPI `pattern` and CEL's `matches()`), so zod, the pure code and the generated CRDs all test the
// same thing.

/** RFC 1123 subdomain: a cluster-scoped object's name, a label key's prefix. */
export const DNS_SUBDOMAIN_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
export const DNS_SUBDOMAIN_MAX = 253;
/** A label key's name part, without prefix (validation.IsQualifiedName). */
export const LABEL_NAME_PATTERN = "^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$";
export const LABEL_NAME_MAX = 63;
/** A label value; empty is allowed (validation.IsValidLabelValue). */
export const LABEL_VALUE_PATTERN = "^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$";

/**
 * A profile revision: an etcd revision, decimal, at most int64 (18 digits keep it below 2^63), which is
 * what the scheduler's `Gt` parses; status.revision's pattern in the CRD and isRevision alike.
 */
export const REVISION_PATTERN = "^(0|[1-9][0-9]{0,17})$";

export const DNS_SUBDOMAIN = new RegExp(DNS_SUBDOMAIN_PATTERN);
export const LABEL_NAME = new RegExp(LABEL_NAME_PATTERN);
export const LABEL_VALUE = new RegExp(LABEL_VALUE_PATTERN);

/** A pattern inside a single-quoted CEL string literal, where a backslash must be written twice. */
export function inCelString(pattern: string): string {
  return pattern.replaceAll("\\", "\\\\");
}
