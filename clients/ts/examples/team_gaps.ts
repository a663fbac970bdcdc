// The TypeScript client in Node against a running server, over Connect JSON (HTTP/1.1):
// the first department's largest gaps against what its roles require.
//
//   node team_gaps.mjs 127.0.0.1:50051 capsight-data/admin.token   (bundled by .ci/clients)
import { readFileSync } from "node:fs";
import { createConnectTransport } from "@connectrpc/connect-web";
import { bearer, capsightClients } from "@capsight/client";

const [address, tokenFile] = process.argv.slice(2);
const token = readFileSync(tokenFile, "utf8").trim();
const api = capsightClients(
  createConnectTransport({ baseUrl: `http://${address}`, interceptors: [bearer(() => token)] }),
);
const { teams } = await api.directory.listTeams({ pageSize: 1000 });
const team = teams.find((t) => t.parentId !== "");
if (!team) throw new Error("no department");
const { capability } = await api.capability.getTeamCapability({ teamId: team.id, includeSubteams: true });
const required = (capability?.skills ?? []).filter((s) => s.gap !== undefined && s.maxLevel !== undefined);
required.sort((a, b) => (b.gap ?? 0) - (a.gap ?? 0));
console.log(`${team.name} (${team.id}): ${capability?.memberCount} members, ${required.length} required skills with evidence`);
for (const s of required.slice(0, 5)) {
  console.log(`  ${s.skillId.padEnd(24)} required ${s.requiredLevel?.toFixed(1)}  best ${s.maxLevel?.toFixed(1)}  gap +${s.gap?.toFixed(1)}`);
}
process.exit(required.length > 0 ? 0 : 1);
