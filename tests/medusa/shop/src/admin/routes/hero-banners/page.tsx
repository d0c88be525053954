/**
 * A shop's own admin page made live with one hook call: `useAdminPush()` joins
 * the page's connection, and `banner.updated` invalidates ["hero-banners"].
 * `useAdminPushEvent` counts the events as well, for more than a refetch.
 */
import { defineRouteConfig } from "@medusajs/admin-sdk"
import { Container, Heading, Text } from "@medusajs/ui"
import { useQuery } from "@tanstack/react-query"
import { useState } from "react"
import { useAdminPush, useAdminPushEvent } from "@admin-push/medusa/admin/hooks"

interface HeroBanner {
  id: string
  title: string
}

const HeroBannersPage = () => {
  const { state } = useAdminPush()
  const [seen, setSeen] = useState(0)
  useAdminPushEvent("banner.updated", () => setSeen((n) => n + 1))
  const { data } = useQuery({
    queryKey: ["hero-banners"],
    queryFn: async (): Promise<{ hero_banners: HeroBanner[] }> =>
      (await fetch("/admin/hero-banners", { credentials: "include" })).json(),
  })
  return (
    <Container>
      <Heading>Hero banners</Heading>
      <Text size="small" data-admin-push-status={state}>
        {state}
      </Text>
      <Text size="small">Banner events seen: {seen}</Text>
      <ul>
        {data?.hero_banners.map((banner) => (
          <li key={banner.id}>{banner.title}</li>
        ))}
      </ul>
    </Container>
  )
}

export const config = defineRouteConfig({ label: "Hero banners" })

export default HeroBannersPage
