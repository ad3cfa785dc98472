#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Throwaway certificates for the TLS tests, made at test time in DIR:
#   ca.pem ca.key            the test CA
#   other-ca.pem             a CA nobody's certificate chains to
#   server.pem server.key    localhost, 127.0.0.1 and ::1 (SAN), by the CA
#   expired.pem expired.key  the same names, valid 2020-2021 only
#   wronghost.pem wronghost.key  other.example only
#   client.pem client.key    a client certificate (clientAuth), by the CA
# EC P-256 keys: fast to make. Debian 12's OpenSSL 3.0 has no -not_before
# for x509, so every leaf is signed with `openssl ca`, whose -startdate and
# -enddate can put the expired one in the past.
#
#   tls_certs.sh DIR
set -euo pipefail

dir=${1:?usage: tls_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
mkdir -p ca.db
: >ca.db/index.txt
echo 1000 >ca.db/serial

cat >ca.cnf <<'EOF'
[ca]
default_ca = test_ca

[test_ca]
dir = .
database = ./ca.db/index.txt
serial = ./ca.db/serial
new_certs_dir = ./ca.db
certificate = ./ca.pem
private_key = ./ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
email_in_dn = no

[any]
commonName = supplied

[v3_ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1

[wronghost]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:other.example

[client]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
EOF

key() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# ca NAME KEY: a self-signed CA certificate NAME.pem.
ca() {
	key "$2"
	openssl req -x509 -new -key "$2" -out "$1.pem" -days 2 -subj "/CN=$1" \
		-config ca.cnf -extensions v3_ca 2>/dev/null
}

# leaf NAME CN EXT [ca options...]: NAME.key and NAME.pem signed by ca.pem.
leaf() {
	local name=$1 cn=$2 ext=$3
	shift 3
	key "$name.key"
	openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr" 2>/dev/null
	openssl ca -batch -config ca.cnf -extensions "$ext" -in "$name.csr" \
		-out "$name.pem" -notext "$@" 2>/dev/null
	rm -f "$name.csr"
}

ca ca ca.key
ca other-ca other-ca.key
leaf server localhost server -days 2
leaf expired localhost server -startdate 20200101000000Z -enddate 20210101000000Z
leaf wronghost other.example wronghost -days 2
leaf client rill-test-client client -days 2
