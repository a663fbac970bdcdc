// Clients for every capsight service over gRPC-Web, the token kept in session storage,
// and the directory model (skill and team names) the pages share.
import { Code, ConnectError } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { bearer, capsightClients } from "@capsight/client";
import type { Skill, Team } from "@capsight/client/v1/types_pb";

const TOKEN_KEY = "capsight.token";

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value.trim());
  else sessionStorage.removeItem(TOKEN_KEY);
  model = null;
}

// Same origin as the page: capsight serves the dashboard beside its services.
const transport = createGrpcWebTransport({ baseUrl: location.origin, interceptors: [bearer(token)] });

export const { capability, directory, ingest, insights, talent } = capsightClients(transport);

/** Skills and teams by id, loaded once per token. */
export interface Model {
  skills: Map<string, Skill>;
  teams: Map<string, Team>;
}

let model: Promise<Model> | null = null;

export function loadModel(): Promise<Model> {
  model ??= (async () => {
    const skills = new Map<string, Skill>();
    const teams = new Map<string, Team>();
    let pageToken = "";
    do {
      const page = await directory.listSkills({ pageSize: 1000, pageToken });
      for (const s of page.skills) skills.set(s.id, s);
      pageToken = page.nextPageToken;
    } while (pageToken);
    do {
      const page = await directory.listTeams({ pageSize: 1000, pageToken });
      for (const t of page.teams) teams.set(t.id, t);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return { skills, teams };
  })();
  model.catch(() => (model = null));
  return model;
}

export function skillName(m: Model, id: string): string {
  return m.skills.get(id)?.name ?? id;
}

export function teamName(m: Model, id: string): string {
  return m.teams.get(id)?.name ?? id;
}

/** A message for the user: what went wrong and what to do. */
export function explain(error: unknown): string {
  const e = ConnectError.from(error);
  switch (e.code) {
    case Code.Unauthenticated:
      return "Your token was not accepted (missing, revoked or expired). Sign in again.";
    case Code.PermissionDenied:
      return "Your token does not give access to this. Managers see their own teams only.";
    case Code.NotFound:
      return `Not found: ${e.rawMessage}`;
    case Code.InvalidArgument:
      return `Invalid request: ${e.rawMessage}`;
    case Code.FailedPrecondition:
      return `Not available yet: ${e.rawMessage}`;
    case Code.Unavailable:
      return "The server cannot be reached.";
    default:
      return `${Code[e.code]}: ${e.rawMessage}`;
  }
}
