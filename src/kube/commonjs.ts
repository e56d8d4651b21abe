// Lazily imported CommonJS packages (yaml, @peculiar/x509) expose their functions on the default export
// when they come from a bundle's split chunk (esbuild), and on both the default and named exports when
// Node loads them itself (the tests run the source too). This reads them the same way in both.
export function commonJsExports<T extends object>(namespace: T): T {
  return (namespace as T & { default?: T }).default ?? namespace;
}
