// capsight's API for TypeScript: a client per service over a Connect transport, and a
// bearer-token interceptor. Messages and services are generated from proto/ into
// src/gen (dashboard: npm run generate); import them from "@capsight/client/v1/<file>_pb".
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { AccessService } from "./gen/capsight/v1/access_pb";
import { CapabilityService } from "./gen/capsight/v1/capability_pb";
import { DirectoryService } from "./gen/capsight/v1/directory_pb";
import { IngestService } from "./gen/capsight/v1/ingest_pb";
import { OrgInsightsService } from "./gen/capsight/v1/insights_pb";
import { TalentService } from "./gen/capsight/v1/talent_pb";

export {
  AccessService,
  CapabilityService,
  DirectoryService,
  IngestService,
  OrgInsightsService,
  TalentService,
};

/** One client per capsight service. */
export interface CapsightClients {
  access: Client<typeof AccessService>;
  capability: Client<typeof CapabilityService>;
  directory: Client<typeof DirectoryService>;
  ingest: Client<typeof IngestService>;
  insights: Client<typeof OrgInsightsService>;
  talent: Client<typeof TalentService>;
}

/** Clients for every service over `transport` (createGrpcWebTransport in a browser,
 * createConnectTransport for Connect JSON over HTTP, e.g. in Node). */
export function capsightClients(transport: Transport): CapsightClients {
  return {
    access: createClient(AccessService, transport),
    capability: createClient(CapabilityService, transport),
    directory: createClient(DirectoryService, transport),
    ingest: createClient(IngestService, transport),
    insights: createClient(OrgInsightsService, transport),
    talent: createClient(TalentService, transport),
  };
}

/** Sends `authorization: Bearer <token>` with every call; `token` is read per call, so
 * it may change (sign-in, sign-out) and may be absent. */
export function bearer(token: () => string | null | undefined): Interceptor {
  return (next) => async (req) => {
    const t = token();
    if (t) req.header.set("authorization", `Bearer ${t}`);
    return next(req);
  };
}
