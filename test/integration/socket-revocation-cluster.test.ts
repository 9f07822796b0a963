/**
 * A live socket lasts no longer than its session, across a cluster: two api nodes over NATS with
 * MariaDB (primary and replica), Redis (cache, socket.io adapter) and S3. The socket is on one api
 * node and the request that ends its session goes to the other; the socket must be dropped within
 * a second. Sessions that run out are checked on an api node whose users service is on another node.
 */
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { signUpMember } from "../support/http-client";
import type { SignedUpMember } from "../support/http-client";
import { eventually, startNode, stopAllNodes, stopNode } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import {
  changePassword,
  closeAllSockets,
  deleteAccount,
  instantProcessor,
  meStatus,
  openSocket,
  refusal,
  signIn,
  signOut,
  uploadImage,
  within,
} from "../support/sockets";
import type { WatchedSocket } from "../support/sockets";

const PUBLIC_URL = "http://shoal.test";
/** How long a test waits for something that should happen, before failing with a clear message. */
const PATIENCE_MS = 10_000;

let services: TestServices;
let env: Record<string, string>;
/** The sockets' node. */
let nodeA: RunningNode;
/** The node the session-ending requests go to. */
let nodeB: RunningNode;

/** A member signed in twice: `first` (from sign-up) and `second`, each with a socket on node A. */
async function memberWithTwoSocketsOnA(): Promise<{ member: SignedUpMember; second: string; sockets: [WatchedSocket, WatchedSocket] }> {
  const member = await signUpMember(nodeB.baseUrl, PUBLIC_URL, { prefix: "csockets" });
  const second = await signIn(nodeB.baseUrl, member.username, member.password);
  const sockets = await Promise.all([openSocket(nodeA.baseUrl, member.token), openSocket(nodeA.baseUrl, second)]);
  return { member, second, sockets };
}

/** Runs the request that ends a session and answers how long after it began each socket was dropped, and why. */
async function droppedAfter(end: () => Promise<unknown>, sockets: readonly WatchedSocket[]): Promise<Array<{ reason: string; withinOneSecond: boolean }>> {
  const began = Date.now();
  await end();
  const drops = await Promise.all(sockets.map((socket) => within(socket.disconnected, PATIENCE_MS, "disconnect")));
  return drops.map(({ reason, at }) => ({ reason, withinOneSecond: at - began < 1000 }));
}

const DROPPED_AT_ONCE = { reason: "io server disconnect", withinOneSecond: true };

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
  env = { ...envFor(services), SHOAL_PUBLIC_URL: PUBLIC_URL, RATE_REGISTRATIONS_PER_IP_PER_HOUR: "1000" };
  [nodeA, nodeB] = await Promise.all([
    startNode({ ...env, NODE_ID: "sockets-a", SERVICES: "api,users,site" }),
    startNode({ ...env, NODE_ID: "sockets-b", SERVICES: "api,users,media,processing" }, { processors: { image: instantProcessor } }),
  ]);
  await Promise.all([nodeA.broker.waitForServices(["media", "processing"], 20_000), nodeB.broker.waitForServices(["site"], 20_000)]);
}, 120_000);

afterAll(async () => {
  closeAllSockets();
  await stopAllNodes();
  await services?.stop();
});

describe("a session ended through node B drops its sockets on node A within a second", () => {
  test("sign-out: the socket on A is dropped, hears nothing of the owner's next private upload, and the token cannot open another", async () => {
    const { member, second, sockets } = await memberWithTwoSocketsOnA();
    const [signedOut, stillSignedIn] = sockets;
    expect(await droppedAfter(() => signOut(nodeB.baseUrl, member.token), [signedOut])).toEqual([DROPPED_AT_ONCE]);

    const mediaId = await uploadImage(nodeB.baseUrl, second);
    const ready = await eventually(
      async () => stillSignedIn.received.find((item) => item.event === "media:ready"),
      (found) => found !== undefined,
    );
    expect(ready?.payload.media).toMatchObject({ id: mediaId, originalUrl: expect.any(String) });
    expect(signedOut.received).toEqual([]);
    expect(await refusal(nodeA.baseUrl, member.token)).toBe("unauthenticated");
    expect(await refusal(nodeB.baseUrl, member.token)).toBe("unauthenticated");
  });

  test("a password change through B drops the other session's socket on A; the changing session's socket stays", async () => {
    const { member, second, sockets } = await memberWithTwoSocketsOnA();
    const [changing, other] = sockets;
    expect(await droppedAfter(() => changePassword(nodeB.baseUrl, member.token, member.password), [other])).toEqual([DROPPED_AT_ONCE]);
    expect(await refusal(nodeA.baseUrl, second)).toBe("unauthenticated");

    const mediaId = await uploadImage(nodeB.baseUrl, member.token);
    await eventually(
      async () => changing.received.filter((item) => item.event === "media:ready").map((item) => item.payload.media?.id),
      (ids) => ids.includes(mediaId),
    );
    expect(changing.socket.connected).toBe(true);
  });

  test("account deletion through B drops the sockets of every session on A and on B", async () => {
    const { member, second, sockets } = await memberWithTwoSocketsOnA();
    const onB = await openSocket(nodeB.baseUrl, second);
    expect(await droppedAfter(() => deleteAccount(nodeB.baseUrl, second, member.password), [...sockets, onB])).toEqual([
      DROPPED_AT_ONCE,
      DROPPED_AT_ONCE,
      DROPPED_AT_ONCE,
    ]);
    expect(await refusal(nodeA.baseUrl, member.token)).toBe("unauthenticated");
  });

  test("a role change made on B drops the account's sockets on A", async () => {
    const { member, second, sockets } = await memberWithTwoSocketsOnA();
    expect(await droppedAfter(() => nodeB.broker.call("users.setRole", { id: member.id, role: "admin" }), sockets)).toEqual([
      DROPPED_AT_ONCE,
      DROPPED_AT_ONCE,
    ]);
    expect(await refusal(nodeA.baseUrl, second)).toBe("unauthenticated");
  });

  test("stopping node B leaves the sockets on node A connected", async () => {
    const member = await signUpMember(nodeA.baseUrl, PUBLIC_URL, { prefix: "staying" });
    const socket = await openSocket(nodeA.baseUrl, member.token);
    await stopNode(nodeB);
    // Told through Redis, a cluster-wide disconnect would have reached A before this round trip through A is answered.
    expect(await meStatus(nodeA.baseUrl, member.token)).toBe(200);
    expect(socket.socket.connected).toBe(true);
  });
});

describe("a session that runs out drops its sockets when it ends, checked through another node's users service", () => {
  test.each([
    ["the absolute lifetime", { SESSION_LIFETIME_SECONDS: "2" }],
    ["the idle timeout", { SESSION_IDLE_TIMEOUT_SECONDS: "2" }],
  ])("%s", async (_what, sessionEnv) => {
    await stopAllNodes();
    const [gateway] = await Promise.all([
      startNode({ ...env, ...sessionEnv, NODE_ID: "timeouts-api", SERVICES: "api" }),
      startNode({ ...env, ...sessionEnv, NODE_ID: "timeouts-users", SERVICES: "users,site,media" }),
    ]);
    await gateway.broker.waitForServices(["users", "media", "site"], 20_000);

    const signingUp = Date.now();
    const member = await signUpMember(gateway.baseUrl, PUBLIC_URL, { prefix: "cbrief" });
    const signedUp = Date.now();
    const socket = await openSocket(gateway.baseUrl, member.token);

    const { reason, at } = await within(socket.disconnected, PATIENCE_MS, "disconnect");
    expect(reason).toBe("io server disconnect");
    // The session began between the two clocks; it ends two seconds later. As for the other endings, within a second.
    expect(at).toBeGreaterThanOrEqual(signingUp + 2000);
    expect(at).toBeLessThan(signedUp + 2000 + 1000);
    expect(await meStatus(gateway.baseUrl, member.token)).toBe(401);
    expect(await refusal(gateway.baseUrl, member.token)).toBe("unauthenticated");
  });
});
