import { defineConfig, loadEnv } from "@medusajs/framework/utils"

loadEnv(process.env.NODE_ENV || "development", process.cwd())

module.exports = defineConfig({
  projectConfig: {
    databaseUrl: process.env.DATABASE_URL,
    http: {
      storeCors: process.env.STORE_CORS || "http://localhost:9000",
      adminCors: process.env.ADMIN_CORS || "http://localhost:9000",
      authCors: process.env.AUTH_CORS || "http://localhost:9000",
      jwtSecret: process.env.JWT_SECRET || "supersecret",
      cookieSecret: process.env.COOKIE_SECRET || "supersecret",
    },
    // The tests serve the built admin over plain http on localhost, where a Secure session
    // cookie would never be set; a real deployment keeps Medusa's default.
    cookieOptions: process.env.COOKIE_SECURE === "false" ? { secure: false } : undefined,
  },
  plugins: [
    {
      resolve: "@admin-push/medusa",
      options: {
        serviceUrl: process.env.ADMIN_PUSH_URL,
        publicUrl: process.env.ADMIN_PUSH_PUBLIC_URL,
        emitSecret: process.env.ADMIN_PUSH_SECRET,
        tokenSecret: process.env.ADMIN_PUSH_JWT_SECRET,
      },
    },
  ],
})
