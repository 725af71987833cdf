// Creates the `mosaic-fed` JWK provisioner of the native step-ca and writes its ca.json, the way
// `step ca init` + `step crypto jwk create` would, without the step CLI (Debian's step sources don't build).
//
//   node provision.mjs --dir <.state/step-ca> --password-file <file> --template <federation.tpl>
//                      --address 127.0.0.1:9000 --dns localhost --dns 127.0.0.1
//
// Expects <dir>/certs/{root_ca,intermediate_ca}.crt and <dir>/secrets/intermediate_ca_key (made by openssl
// in infra/native/step-ca.sh). Writes:
//   <dir>/secrets/mosaic-fed.json  the private JWK encrypted with the password, JWE JSON serialization
//                                  (what `step crypto jwk create` writes and /home/step/secrets/mosaic-fed.json
//                                  holds for Docker users);
//   <dir>/config/ca.json           ONE JWK provisioner: `key` = the public JWK, `encryptedKey` = the same
//                                  JWE in compact serialization, options.x509.templateFile = <template>.
//
// The JWE is step's format (design.md §6): alg PBES2-HS256+A128KW, enc A256GCM, cty "jwk+json",
// p2s = 16 random bytes, p2c = 600000. Hand-written with Node's crypto because no library is installed
// here that writes PBES2 JWEs, and the steps are few: PBKDF2-HMAC-SHA256 (salt = alg ‖ 0x00 ‖ p2s) → AES-128
// key wrap of a random 256-bit content key → AES-256-GCM over the JWK with the protected header as AAD.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

const { values: opts } = parseArgs({
  options: {
    dir: { type: "string" },
    "password-file": { type: "string" },
    template: { type: "string" },
    address: { type: "string", default: "127.0.0.1:9000" },
    dns: { type: "string", multiple: true, default: ["localhost", "127.0.0.1"] },
    "min-duration": { type: "string", default: "1m" },
    "default-duration": { type: "string", default: "24h" },
    "max-duration": { type: "string", default: "720h" },
  },
});
for (const required of ["dir", "password-file", "template"]) {
  if (!opts[required]) {
    console.error(`provision.mjs: --${required} is required`);
    process.exit(2);
  }
}

const P2C = 600000; // current step's PBKDF2 iteration count
const b64url = (buf) => Buffer.from(buf).toString("base64url");

// step-ca and step read password files with trailing whitespace trimmed; do the same.
const password = fs.readFileSync(opts["password-file"], "utf8").replace(/\s+$/, "");
if (password.length < 16) {
  console.error("provision.mjs: the provisioner password must have at least 16 characters");
  process.exit(1);
}

// The provisioner key: P-256, ES256. kid = RFC 7638 thumbprint (required members in lexical order).
const { privateKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
const jwk = privateKey.export({ format: "jwk" });
const thumbprintInput = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
const kid = b64url(crypto.createHash("sha256").update(thumbprintInput).digest());
const publicJwk = { use: "sig", kty: "EC", kid, crv: "P-256", alg: "ES256", x: jwk.x, y: jwk.y };
const privateJwk = { ...publicJwk, d: jwk.d };

function encryptJwe(plaintext, secret) {
  const alg = "PBES2-HS256+A128KW";
  const p2s = crypto.randomBytes(16);
  // Members in the order step (go-jose) writes them: alphabetical.
  const header = { alg, cty: "jwk+json", enc: "A256GCM", p2c: P2C, p2s: b64url(p2s) };
  const protectedB64 = b64url(JSON.stringify(header));
  const salt = Buffer.concat([Buffer.from(alg, "utf8"), Buffer.from([0]), p2s]);
  const kek = crypto.pbkdf2Sync(Buffer.from(secret, "utf8"), salt, P2C, 16, "sha256");
  const cek = crypto.randomBytes(32);
  // RFC 3394 AES key wrap with the default IV.
  const wrap = crypto.createCipheriv("id-aes128-wrap", kek, Buffer.from("A6A6A6A6A6A6A6A6", "hex"));
  const encryptedKey = Buffer.concat([wrap.update(cek), wrap.final()]);
  const iv = crypto.randomBytes(12);
  const gcm = crypto.createCipheriv("aes-256-gcm", cek, iv);
  gcm.setAAD(Buffer.from(protectedB64, "ascii"));
  const ciphertext = Buffer.concat([gcm.update(Buffer.from(plaintext, "utf8")), gcm.final()]);
  const tag = gcm.getAuthTag();
  return {
    json: {
      protected: protectedB64,
      encrypted_key: b64url(encryptedKey),
      iv: b64url(iv),
      ciphertext: b64url(ciphertext),
      tag: b64url(tag),
    },
    compact: [protectedB64, b64url(encryptedKey), b64url(iv), b64url(ciphertext), b64url(tag)].join("."),
  };
}

const jwe = encryptJwe(JSON.stringify(privateJwk), password);

const dir = path.resolve(opts.dir);
for (const sub of ["certs", "secrets", "config", "db"]) fs.mkdirSync(path.join(dir, sub), { recursive: true });
for (const needed of ["certs/root_ca.crt", "certs/intermediate_ca.crt", "secrets/intermediate_ca_key"]) {
  if (!fs.existsSync(path.join(dir, needed))) {
    console.error(`provision.mjs: ${path.join(dir, needed)} is missing; make the PKI first`);
    process.exit(1);
  }
}

fs.writeFileSync(path.join(dir, "secrets/mosaic-fed.json"), JSON.stringify(jwe.json, null, 2) + "\n", {
  mode: 0o600,
});
fs.writeFileSync(path.join(dir, "certs/mosaic-fed.pub.json"), JSON.stringify(publicJwk, null, 2) + "\n");

const caConfig = {
  root: path.join(dir, "certs/root_ca.crt"),
  federatedRoots: null,
  crt: path.join(dir, "certs/intermediate_ca.crt"),
  key: path.join(dir, "secrets/intermediate_ca_key"),
  address: opts.address,
  insecureAddress: "",
  dnsNames: opts.dns,
  logger: { format: "text" },
  db: { type: "badgerv2", dataSource: path.join(dir, "db"), badgerFileLoadingMode: "" },
  authority: {
    provisioners: [
      {
        type: "JWK",
        name: "mosaic-fed",
        key: publicJwk,
        encryptedKey: jwe.compact,
        claims: {
          minTLSCertDuration: opts["min-duration"],
          defaultTLSCertDuration: opts["default-duration"],
          maxTLSCertDuration: opts["max-duration"],
        },
        options: { x509: { templateFile: path.resolve(opts.template) } },
      },
    ],
  },
  tls: {
    cipherSuites: ["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
    minVersion: 1.2,
    maxVersion: 1.3,
    renegotiation: false,
  },
};
// ca.json is written last: its presence marks a finished set-up.
const caJson = path.join(dir, "config/ca.json");
fs.writeFileSync(caJson + ".tmp", JSON.stringify(caConfig, null, 2) + "\n");
fs.renameSync(caJson + ".tmp", caJson);
console.log(`provisioner mosaic-fed (kid ${kid}) written to ${caJson}`);
