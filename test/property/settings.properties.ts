import fc from "fast-check";
import { parseSettings, SettingsError } from "../../config/settings";
import type { Env, Settings } from "../../config/settings";
import { CLUSTER, CWD } from "../support/settings-env";
import { settingNames } from "../support/settings-names";
import type { PropertyGroup } from "./fuzz-parameters";

const NAMES = [...settingNames()].sort();

/** Values of the shapes settings take, and near misses of them. */
const settingValue = fc.oneof(
  fc.string(),
  fc.integer().map(String),
  fc.double().map(String),
  fc.constantFrom("true", "false", "yes", "0", "1", " ", "", "embedded", "cluster", "image,video", "loopback", "10.0.0.0/8", "info", "0x10", "1e3", "-1", "Infinity"),
  fc.webUrl({ withQueryParameters: true, withFragments: true }),
  fc.tuple(fc.constantFrom("mysql", "redis", "rediss", "nats", "tls", "http", "https", "ftp", ""), fc.webAuthority({ withUserInfo: true, withPort: true })).map(([scheme, authority]) => `${scheme}://${authority}`),
);

const anyEnv = fc.dictionary(fc.constantFrom(...NAMES), settingValue, { maxKeys: 12 });

function parsedOrDocumentedRefusal(env: Env): boolean {
  let settings: Settings;
  try {
    settings = parseSettings(env, CWD);
  } catch (error) {
    return error instanceof SettingsError && NAMES.includes(error.variable) && !error.message.includes("\n");
  }
  return Object.isFrozen(settings) && Object.isFrozen(settings.uploads.maxBytes) && settings.port >= 0 && settings.port <= 65_535;
}

/** Settings that hold URLs, each with what must come before it for it to be read. */
const URL_SETTINGS: ReadonlyArray<readonly [string, Env]> = [
  ["MYSQL_PRIMARY_URL", { ...CLUSTER }],
  ["MYSQL_MEDIA_PRIMARY_URL", { ...CLUSTER }],
  ["MYSQL_REPLICA_URLS", { ...CLUSTER }],
  ["NATS_URL", { ...CLUSTER }],
  ["REDIS_URL", { ...CLUSTER }],
  ["S3_ENDPOINT", { ...CLUSTER }],
  ["SHOAL_PUBLIC_URL", {}],
  ["MEDIA_PUBLIC_BASE_URL", {}],
  ["CORS_ORIGINS", {}],
];

const POSITIVE_INTEGERS: ReadonlyArray<readonly [string, (settings: Settings) => number]> = [
  ["UPLOAD_MAX_IMAGE_BYTES", (settings) => settings.uploads.maxBytes.image],
  ["IMAGE_MAX_PIXELS", (settings) => settings.uploads.maxImagePixels],
  ["SIGNED_URL_TTL_SECONDS", (settings) => settings.delivery.signedUrlTtlSeconds],
  ["JOB_MAX_ATTEMPTS", (settings) => settings.jobs.maxAttempts],
  ["SESSION_IDLE_TIMEOUT_SECONDS", (settings) => settings.sessions.idleTimeoutSeconds],
];

export const settingsParsing: PropertyGroup = {
  subject: "settings parsing",
  properties: [
    {
      name: "any values of any settings give frozen settings or a one-line SettingsError naming one of them",
      property: fc.property(anyEnv, (env) => parsedOrDocumentedRefusal(env)),
    },
    {
      name: "in cluster mode too, with everything required given, any other values give settings or a SettingsError",
      property: fc.property(anyEnv, (env) => parsedOrDocumentedRefusal({ ...env, ...CLUSTER })),
    },
    {
      name: "a URL setting refused for its form never shows the password it holds",
      property: fc.property(
        fc.constantFrom(...URL_SETTINGS),
        fc.constantFrom("ftp", "mysql", "redis", "file", "", "http"),
        fc.string({ unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789:/@%"), minLength: 6, maxLength: 24 }),
        fc.constantFrom("", "host", "/path", "[::1", "host:99999", "exa mple"),
        ([name, base], scheme, password, rest) => {
          const secret = `Pw${password}`;
          const env = { ...base, [name]: `${scheme}://user:${secret}@${rest}` };
          try {
            parseSettings(env, CWD);
            return true;
          } catch (error) {
            return error instanceof SettingsError && error.variable === name && !error.message.includes(secret);
          }
        },
      ),
    },
    {
      name: "a positive whole number, with spaces around it, is read as that number; anything else that is not one is refused",
      property: fc.property(fc.constantFrom(...POSITIVE_INTEGERS), fc.oneof(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.integer({ max: 0 })), fc.constantFrom("", " ", "\t"), ([name, read], value, space) => {
        try {
          const settings = parseSettings({ [name]: `${space}${value}${space}` }, CWD);
          return value > 0 && read(settings) === value;
        } catch (error) {
          return value <= 0 && error instanceof SettingsError && error.variable === name;
        }
      }),
    },
  ],
};
