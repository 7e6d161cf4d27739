// Merkle proofs checked in the browser (RFC 6962 / RFC 9162 section 2.1,
// the tree golang.org/x/mod/sumdb/tlog builds): an event's inclusion in
// the tree of a checkpoint, and a newer tree's consistency with an older
// one. Hashes are base64 SHA-256; interior nodes hash 0x01 || left || right.

function b64(s) { return Uint8Array.from(atob(s), (c) => c.charCodeAt(0)); }

async function node(left, right) {
  const buf = new Uint8Array(1 + left.length + right.length);
  buf[0] = 1;
  buf.set(left, 1);
  buf.set(right, 1 + left.length);
  return new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
}

function equal(a, b) { return a.length === b.length && a.every((x, i) => x === b[i]); }
const odd = (n) => n % 2 === 1;
const half = (n) => Math.floor(n / 2);

/** verifyInclusion checks that leafHash is leaf `index` of the tree of `size` leaves with root `root`. */
export async function verifyInclusion(leafHash, index, size, proof, root) {
  if (!leafHash || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = b64(leafHash);
  for (const p of proof.map(b64)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      r = await node(p, r);
      if (!odd(fn)) while (!odd(fn) && fn !== 0) { fn = half(fn); sn = half(sn); }
    } else {
      r = await node(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equal(r, b64(root));
}

/** verifyConsistency checks that the tree (second, secondHash) extends (first, firstHash). */
export async function verifyConsistency(first, second, firstHash, secondHash, proof) {
  if (first > second) return false;
  if (first === second) return proof.length === 0 && firstHash === secondHash;
  if (first === 0) return proof.length === 0;
  let path = proof.map(b64);
  if ((first & (first - 1)) === 0 && first < 2 ** 31) path = [b64(firstHash), ...path];
  if (!path.length) return false;
  let fn = first - 1;
  let sn = second - 1;
  while (odd(fn)) { fn = half(fn); sn = half(sn); }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = await node(c, fr);
      sr = await node(c, sr);
      if (!odd(fn)) while (!odd(fn) && fn !== 0) { fn = half(fn); sn = half(sn); }
    } else {
      sr = await node(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equal(fr, b64(firstHash)) && equal(sr, b64(secondHash));
}
