// The admin's Vite build replaces `import.meta.env.VITE_*` at build time.
// Declared here so the kit type-checks with or without `vite/client` types.
interface ImportMetaEnv {
  /** Origin of the admin-push service, e.g. "https://push.example.com". */
  readonly VITE_ADMIN_PUSH_URL?: string
  /** Medusa backend origin when the admin is served elsewhere; default same origin. */
  readonly VITE_BACKEND_URL?: string
}

interface ImportMeta {
  readonly env: ImportMetaEnv
}
