// Clients for every capsight service over gRPC-Web, the token kept in session storage,
// and the directory model (skill and team names) the pages share.
import { Code, ConnectError } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { bearer, capsightClients } from "@capsight/client";
import type { Skill, Team } from "@capsight/client/v1/types_pb";
import { AccessRole, type WhoAmIResponse } from "@capsight/client/v1/access_pb";

const TOKEN_KEY = "capsight.token";

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value.trim());
  else sessionStorage.removeItem(TOKEN_KEY);
  model = null;
  me = null;
}

// Same origin as the page: capsight serves the dashboard beside its services.
const transport = createGrpcWebTransport({ baseUrl: location.origin, interceptors: [bearer(token)] });

export const { access, capability, directory, ingest, insights, talent } = capsightClients(transport);

/** Who the token is: role, scope and the rpcs it may call (WhoAmI), once per token. */
export interface Me {
  role: AccessRole;
  /** Team subtrees of a manager or planner token (empty: everything). */
  teamIds: string[];
  /** The person of a person token. */
  personId: string;
  displayName: string;
  rpcs: Set<string>;
}

let me: Promise<Me> | null = null;

export function whoAmI(): Promise<Me> {
  me ??= access.whoAmI({}).then((r: WhoAmIResponse) => ({
    role: r.token?.role ?? AccessRole.UNSPECIFIED,
    teamIds: r.token?.teamIds ?? [],
    personId: r.token?.personId ?? "",
    displayName: r.displayName,
    rpcs: new Set(r.allowedRpcs.map((x) => x.replace(/^capsight\.v1\./, ""))),
  }));
  me.catch(() => (me = null));
  return me;
}

/** Whether the token may call `rpc` ("Service/Method"). */
export function can(who: Me, rpc: string): boolean {
  return who.rpcs.has(rpc);
}

export function roleName(role: AccessRole): string {
  return AccessRole[role].toLowerCase();
}

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
      switch (e.rawMessage) {
        case "malformed token":
          return "That is not a capsight token: check that you pasted all of it (it starts with cs_).";
        case "token revoked":
          return "This token was revoked. Ask your administrator for a new one.";
        case "token expired":
          return "This token has expired. Ask your administrator for a new one.";
        default:
          return "This token is not known to this server. Check that you are signing in to the right server.";
      }
    case Code.PermissionDenied:
      return "Your token does not give access to this: it is outside your role or your teams.";
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
