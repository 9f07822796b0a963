/**
 * In a real browser (Debian's Chromium through playwright-core) against an embedded node: a page's
 * live connection ends with its session. Signed in on two "devices", changing the password on one
 * drops the other's socket.io connection, read from the page's own WebSocket traffic.
 */
import type { Browser, BrowserContext, Page, WebSocket } from "playwright-core";
import { ensureWebBuild, launchChromium, startWebNode } from "../support/browser";
import { eventually, stopNode } from "../support/nodes";
import type { RunningNode } from "../support/nodes";

jest.setTimeout(60_000);

const PASSWORD = "a sturdy horse battery 42";

let node: RunningNode;
let browser: Browser;
const contexts: BrowserContext[] = [];

/** A page's WebSocket to /socket.io, with the frames it has exchanged. */
interface LiveConnection {
  readonly socket: WebSocket;
  readonly sent: string[];
  readonly received: string[];
  closed: boolean;
}

async function newPage(): Promise<{ page: Page; connections: LiveConnection[] }> {
  const context = await browser.newContext();
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const connections: LiveConnection[] = [];
  page.on("websocket", (socket) => {
    if (!socket.url().includes("/socket.io/")) return;
    const connection: LiveConnection = { socket, sent: [], received: [], closed: false };
    socket.on("framesent", (frame) => connection.sent.push(String(frame.payload)));
    socket.on("framereceived", (frame) => connection.received.push(String(frame.payload)));
    socket.on("close", () => (connection.closed = true));
    connections.push(connection);
  });
  return { page, connections };
}

/** The page's connection once socket.io has moved it onto the WebSocket (engine.io's upgrade packet "5" sent). */
async function upgradedConnection(connections: LiveConnection[]): Promise<LiveConnection> {
  const found = await eventually(
    async () => connections.find((connection) => connection.sent.includes("5") && !connection.closed),
    (connection) => connection !== undefined,
  );
  return found!;
}

beforeAll(async () => {
  ensureWebBuild();
  node = await startWebNode({ RATE_REGISTRATIONS_PER_IP_PER_HOUR: "100" });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(contexts.map((context) => context.close()));
  await browser?.close();
  if (node) await stopNode(node);
});

test("changing the password on one device drops the other device's live connection, and only that one", async () => {
  const username = `device${Date.now().toString(36)}`;
  const phone = await newPage();
  await phone.page.goto(`${node.baseUrl}/#/signup`);
  await phone.page.locator("#username").fill(username);
  await phone.page.locator("#email").fill(`${username}@example.test`);
  await phone.page.locator("#new-password").fill(PASSWORD);
  await phone.page.getByRole("button", { name: "Create account" }).click();
  await phone.page.getByRole("button", { name: "Sign out" }).waitFor();
  const phoneConnection = await upgradedConnection(phone.connections);

  const laptop = await newPage();
  await laptop.page.goto(`${node.baseUrl}/#/signin`);
  await laptop.page.locator("#login").fill(username);
  await laptop.page.locator("#password").fill(PASSWORD);
  await laptop.page.getByRole("button", { name: "Sign in" }).click();
  await laptop.page.getByRole("button", { name: "Sign out" }).waitFor();
  const laptopConnection = await upgradedConnection(laptop.connections);

  await laptop.page.goto(`${node.baseUrl}/#/account`);
  await laptop.page.locator("#current-password").fill(PASSWORD);
  await laptop.page.locator("#next-password").fill(`${PASSWORD} renewed`);
  await laptop.page.getByRole("button", { name: "Change password" }).click();
  await laptop.page.getByText("Your password is changed.").waitFor();

  // socket.io's DISCONNECT packet for the default namespace, then the WebSocket closes.
  await eventually(async () => phoneConnection, (connection) => connection.closed);
  expect(phoneConnection.received).toContain("41");
  expect(laptopConnection.closed).toBe(false);
  expect(laptopConnection.received).not.toContain("41");
});
