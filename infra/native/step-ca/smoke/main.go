// Command smoke checks the native step-ca from the outside, with step's own Go libraries (Debian's
// go.step.sm/crypto and go-jose sources), independently of the Rust client:
//
//  1. the provisioner key in STEP_CA_PROVISIONER_KEY_JSON (JWE JSON serialization) and the compact JWE the
//     CA publishes in /provisioners both decrypt with STEP_CA_PROVISIONER_PASSWORD, to the same key,
//     whose public half and kid (RFC 7638 thumbprint) are the provisioner's;
//  2. a token with mosaic_grant_id and mosaic_subject_user_id gets a certificate (POST /1.0/sign) that
//     chains to STEP_CA_ROOT_CERT_PATH and carries both OIDs, non-critical, as DER UTF8Strings;
//  3. the same token again is refused (401), and a token without the claims is refused (no certificate).
//
// Built and run by infra/test (step "step-ca-smoke") after `eval "$(infra/native/env)"`.
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"go.step.sm/crypto/jose"
)

var (
	oidGrant   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}
	oidSubject = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 2}
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "step-ca smoke: FAILED: "+format+"\n", args...)
	os.Exit(1)
}

func ok(format string, args ...interface{}) {
	fmt.Printf("step-ca smoke: ok: "+format+"\n", args...)
}

func env(name string) string {
	v := os.Getenv(name)
	if v == "" {
		fail("%s is not set; run eval \"$(infra/native/env)\" after infra/native/up", name)
	}
	return v
}

func randomUUID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		fail("random: %v", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

type provisionerList struct {
	Provisioners []struct {
		Type         string          `json:"type"`
		Name         string          `json:"name"`
		Key          jose.JSONWebKey `json:"key"`
		EncryptedKey string          `json:"encryptedKey"`
	} `json:"provisioners"`
}

func main() {
	caURL := strings.TrimRight(env("STEP_CA_URL"), "/")
	keyJSON := env("STEP_CA_PROVISIONER_KEY_JSON")
	password := []byte(env("STEP_CA_PROVISIONER_PASSWORD"))
	rootPEM, err := os.ReadFile(env("STEP_CA_ROOT_CERT_PATH"))
	if err != nil {
		fail("reading the root: %v", err)
	}
	block, _ := pem.Decode(rootPEM)
	if block == nil {
		fail("STEP_CA_ROOT_CERT_PATH holds no PEM certificate")
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		fail("parsing the root: %v", err)
	}
	rootSum := sha256.Sum256(root.Raw)
	roots := x509.NewCertPool()
	roots.AddCert(root)
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
	}

	// 1. The encrypted provisioner key, both serializations.
	if !strings.Contains(keyJSON, `"protected"`) {
		fail("STEP_CA_PROVISIONER_KEY_JSON is not a JWE in JSON serialization")
	}
	jwk, err := jose.ParseKey([]byte(keyJSON), jose.WithPassword(password))
	if err != nil {
		fail("decrypting STEP_CA_PROVISIONER_KEY_JSON with step's jose: %v", err)
	}
	if _, wrong := jose.ParseKey([]byte(keyJSON), jose.WithPassword([]byte("not-the-password-at-all"))); wrong == nil {
		fail("the provisioner key decrypted with a wrong password")
	}
	priv, isEC := jwk.Key.(*ecdsa.PrivateKey)
	if !isEC || priv.Curve != elliptic.P256() {
		fail("the provisioner key is not a P-256 private key")
	}
	thumb, err := jose.Thumbprint(jwk)
	if err != nil || thumb != jwk.KeyID {
		fail("kid %q is not the RFC 7638 thumbprint %q (%v)", jwk.KeyID, thumb, err)
	}
	ok("STEP_CA_PROVISIONER_KEY_JSON decrypts (PBES2-HS256+A128KW/A256GCM) to a P-256 key, kid = thumbprint %s", thumb)

	resp, err := client.Get(caURL + "/provisioners")
	if err != nil {
		fail("GET /provisioners over the pinned root: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var list provisionerList
	if err := json.Unmarshal(body, &list); err != nil || len(list.Provisioners) != 1 {
		fail("GET /provisioners: want exactly one provisioner, got %s", body)
	}
	p := list.Provisioners[0]
	if p.Type != "JWK" || p.Name != "mosaic-fed" || p.Key.KeyID != jwk.KeyID {
		fail("the CA's provisioner is %s %q kid %q; want JWK mosaic-fed kid %q", p.Type, p.Name, p.Key.KeyID, jwk.KeyID)
	}
	fromCA, err := jose.Decrypt([]byte(p.EncryptedKey), jose.WithPassword(password))
	if err != nil || !strings.Contains(p.EncryptedKey, ".") {
		fail("decrypting the CA's compact encryptedKey: %v", err)
	}
	var caKey jose.JSONWebKey
	if err := json.Unmarshal(fromCA, &caKey); err != nil {
		fail("the CA's encryptedKey holds no JWK: %v", err)
	}
	caPriv, isEC := caKey.Key.(*ecdsa.PrivateKey)
	if !isEC || caPriv.D.Cmp(priv.D) != 0 || !priv.PublicKey.Equal(p.Key.Key) {
		fail("the CA's encryptedKey / key differ from STEP_CA_PROVISIONER_KEY_JSON")
	}
	ok("the CA's compact encryptedKey decrypts to the same key; its public key is the provisioner's `key`")

	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv},
		new(jose.SignerOptions).WithType("JWT").WithHeader("kid", jwk.KeyID))
	if err != nil {
		fail("signer: %v", err)
	}
	token := func(cn string, custom map[string]interface{}) string {
		now := time.Now()
		claims := map[string]interface{}{
			"iss":  "mosaic-fed",
			"aud":  caURL + "/1.0/sign",
			"sub":  cn,
			"sans": []string{cn},
			"nbf":  now.Unix(),
			"iat":  now.Unix(),
			"exp":  now.Add(5 * time.Minute).Unix(),
			"jti":  randomUUID(),
			"sha":  hex.EncodeToString(rootSum[:]),
		}
		for k, v := range custom {
			claims[k] = v
		}
		t, err := jose.Signed(signer).Claims(claims).CompactSerialize()
		if err != nil {
			fail("signing the token: %v", err)
		}
		return t
	}
	csr := func(cn string) string {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			fail("key: %v", err)
		}
		der, err := x509.CreateCertificateRequest(rand.Reader,
			&x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn}}, key)
		if err != nil {
			fail("csr: %v", err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	}
	sign := func(csrPEM, ott string) (int, []byte) {
		req, _ := json.Marshal(map[string]string{"csr": csrPEM, "ott": ott, "notAfter": "5m"})
		resp, err := client.Post(caURL+"/1.0/sign", "application/json", bytes.NewReader(req))
		if err != nil {
			fail("POST /1.0/sign: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	// 2. Issuance with both claims.
	grant, subject := randomUUID(), randomUUID()
	cn := "smoke.peer.mosaic.test"
	ott := token(cn, map[string]interface{}{"mosaic_grant_id": grant, "mosaic_subject_user_id": subject})
	status, body := sign(csr(cn), ott)
	if status != http.StatusCreated {
		fail("POST /1.0/sign: status %d: %s", status, body)
	}
	var signed struct {
		Crt       string   `json:"crt"`
		CertChain []string `json:"certChain"`
	}
	if err := json.Unmarshal(body, &signed); err != nil {
		fail("sign response: %v", err)
	}
	leafBlock, _ := pem.Decode([]byte(signed.Crt))
	if leafBlock == nil {
		fail("sign response has no certificate")
	}
	leaf, err := x509.ParseCertificate(leafBlock.Bytes)
	if err != nil {
		fail("parsing the certificate: %v", err)
	}
	inter := x509.NewCertPool()
	for _, c := range signed.CertChain[1:] {
		if b, _ := pem.Decode([]byte(c)); b != nil {
			if ic, err := x509.ParseCertificate(b.Bytes); err == nil {
				inter.AddCert(ic)
			}
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		fail("the certificate does not chain to the root: %v", err)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life > 10*time.Minute {
		fail("asked for 5 minutes, got %s (minTLSCertDuration claim not honoured?)", life)
	}
	want := map[string]string{oidGrant.String(): grant, oidSubject.String(): subject}
	for _, ext := range leaf.Extensions {
		v, isOurs := want[ext.Id.String()]
		if !isOurs {
			continue
		}
		expected := append([]byte{0x0c, byte(len(v))}, v...)
		if ext.Critical || !bytes.Equal(ext.Value, expected) {
			fail("extension %s: critical=%v value %x; want non-critical %x", ext.Id, ext.Critical, ext.Value, expected)
		}
		delete(want, ext.Id.String())
	}
	if len(want) != 0 {
		fail("the certificate lacks the extensions %v", want)
	}
	ok("issued %s (serial %s, %s) with both OIDs as non-critical UTF8Strings, chained to the root",
		cn, leaf.SerialNumber, leaf.NotAfter.Sub(leaf.NotBefore))

	// 3. Refusals.
	if status, body := sign(csr(cn), ott); status != http.StatusUnauthorized {
		fail("a replayed token got status %d, want 401: %s", status, body)
	}
	ok("a replayed token is refused with 401")
	noClaims := token(cn, nil)
	if status, body := sign(csr(cn), noClaims); status == http.StatusCreated || status < 400 {
		fail("a token without the mosaic claims got status %d: %s", status, body)
	} else {
		ok("a token without the mosaic claims is refused with %d: %s", status, strings.TrimSpace(string(body)))
	}
	fmt.Println("step-ca smoke: all checks passed")
}
