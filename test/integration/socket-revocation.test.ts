/**
 * A live socket lasts no longer than the session it was opened with (embedded mode): sign-out,
 * a password change, the account's deletion and a role change drop it at once, and the idle
 * and absolute timeouts drop it when they pass. A dropped socket hears nothing more of its
 * owner's media, and its session cannot open another.
 */
import { HttpClient, signUpMember } from "../support/http-client";
import type { AccountView, SignedUpMember } from "../support/http-client";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
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

/** How long a test waits for something that should happen at once, before failing with a clear message. */
const PATIENCE_MS = 10_000;

let node: RunningNode;

/** A member signed in twice: `first` (from sign-up) and `second`, each with a socket. */
async function memberWithTwoSockets(baseUrl: string, origin: string): Promise<{ member: SignedUpMember; second: string; sockets: [WatchedSocket, WatchedSocket] }> {
  const member = await signUpMember(baseUrl, origin, { prefix: "sockets" });
  const second = await signIn(baseUrl, member.username, member.password);
  const sockets = await Promise.all([openSocket(baseUrl, member.token), openSocket(baseUrl, second)]);
  return { member, second, sockets };
}

async function expectDropped(socket: WatchedSocket): Promise<void> {
  expect(await within(socket.disconnected, PATIENCE_MS, "disconnect")).toMatchObject({ reason: "io server disconnect" });
}

beforeAll(async () => {
  node = await startNode({ RATE_REGISTRATIONS_PER_IP_PER_HOUR: "100" }, { processors: { image: instantProcessor } });
});

afterAll(async () => {
  closeAllSockets();
  await stopAllNodes();
});

describe("a session ended by a request takes its sockets with it", () => {
  test("sign-out: the socket is dropped, hears nothing of the owner's next private upload, and the token cannot open another", async () => {
    const { member, second, sockets } = await memberWithTwoSockets(node.baseUrl, node.publicUrl);
    const [signedOut, stillSignedIn] = sockets;
    await signOut(node.baseUrl, member.token);
    await expectDropped(signedOut);

    const mediaId = await uploadImage(node.baseUrl, second);
    const ready = await eventually(
      async () => stillSignedIn.received.find((item) => item.event === "media:ready"),
      (found) => found !== undefined,
    );
    // What the dropped socket used to leak: the owner's view, with a signed URL of the original.
    expect(ready?.payload.media).toMatchObject({ id: mediaId, originalUrl: expect.any(String) });
    expect(signedOut.received).toEqual([]);
    expect(signedOut.socket.connected).toBe(false);
    expect(await refusal(node.baseUrl, member.token)).toBe("unauthenticated");
    expect(stillSignedIn.socket.connected).toBe(true);
  });

  test("a password change ends the other sessions' sockets; the changing session's socket stays", async () => {
    const { member, second, sockets } = await memberWithTwoSockets(node.baseUrl, node.publicUrl);
    const [changing, other] = sockets;
    await changePassword(node.baseUrl, member.token, member.password);
    await expectDropped(other);
    expect(await refusal(node.baseUrl, second)).toBe("unauthenticated");

    const mediaId = await uploadImage(node.baseUrl, member.token);
    await eventually(
      async () => changing.received.filter((item) => item.event === "media:ready").map((item) => item.payload.media?.id),
      (ids) => ids.includes(mediaId),
    );
    expect(changing.socket.connected).toBe(true);
    expect(other.received).toEqual([]);
  });

  test("account deletion drops the sockets of every session of the account", async () => {
    const { member, second, sockets } = await memberWithTwoSockets(node.baseUrl, node.publicUrl);
    await deleteAccount(node.baseUrl, second, member.password);
    await Promise.all(sockets.map(expectDropped));
    expect(await refusal(node.baseUrl, member.token)).toBe("unauthenticated");
  });

  test("a role change signs the account out everywhere, sockets included; signing in again works, with the new role", async () => {
    const { member, second, sockets } = await memberWithTwoSockets(node.baseUrl, node.publicUrl);
    const stranger = await signUpMember(node.baseUrl, node.publicUrl, { prefix: "bystander" });
    const strangerSocket = await openSocket(node.baseUrl, stranger.token);

    await node.broker.call("users.setRole", { id: member.id, role: "admin" });
    await Promise.all(sockets.map(expectDropped));
    expect(await refusal(node.baseUrl, second)).toBe("unauthenticated");
    expect(await meStatus(node.baseUrl, member.token)).toBe(401);
    const again = await signIn(node.baseUrl, member.username, member.password);
    const me = await new HttpClient(node.baseUrl, { origin: null }).get<{ user: AccountView }>("/api/users/me", { bearer: again });
    expect({ status: me.status, role: me.body.user.role }).toEqual({ status: 200, role: "admin" });
    await openSocket(node.baseUrl, again);
    // Another account's socket is not touched.
    expect(strangerSocket.socket.connected).toBe(true);
  });

  test("setting the role an account already has ends nothing", async () => {
    const member = await signUpMember(node.baseUrl, node.publicUrl, { prefix: "samerole" });
    const socket = await openSocket(node.baseUrl, member.token);
    await node.broker.call("users.setRole", { id: member.id, role: "user" });
    expect(await meStatus(node.baseUrl, member.token)).toBe(200);
    expect(socket.socket.connected).toBe(true);
  });
});

describe("a session that runs out takes its sockets with it, when it ends and not before", () => {
  test.each([
    ["the absolute lifetime", { SESSION_LIFETIME_SECONDS: "2" }],
    ["the idle timeout", { SESSION_IDLE_TIMEOUT_SECONDS: "2" }],
  ])("%s", async (_what, env) => {
    const shortLived = await startNode(env);
    const signingUp = Date.now();
    const member = await signUpMember(shortLived.baseUrl, shortLived.publicUrl, { prefix: "brief" });
    const signedUp = Date.now();
    const socket = await openSocket(shortLived.baseUrl, member.token);

    const { reason, at } = await within(socket.disconnected, PATIENCE_MS, "disconnect");
    expect(reason).toBe("io server disconnect");
    // The session began between the two clocks; it ends two seconds later. As for the other endings, within a second.
    expect(at).toBeGreaterThanOrEqual(signingUp + 2000);
    expect(at).toBeLessThan(signedUp + 2000 + 1000);
    expect(await meStatus(shortLived.baseUrl, member.token)).toBe(401);
    expect(await refusal(shortLived.baseUrl, member.token)).toBe("unauthenticated");
  });
});
