"""What the platform attests, and how anyone can check it without trusting the service: a model
measured on a benchmark the service holds, its lineage as a Mermaid diagram, an attestation
verified with `cryptography` alone (and its EIP-712 signature with `eth-account`, when the service
has an EIP-712 key), the whole chain checked offline and by the service, and a contributor's impact.

    pip install 'hokusai-ml-platform[mlflow,verify]' scikit-learn pandas cryptography
    export HOKUSAI_BASE_URL=http://127.0.0.1:8000 HOKUSAI_API_KEY=hk_...   # `benchmark`+`write`
    python examples/lineage_and_attestations.py
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid

import hokusai
import pandas as pd
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from hokusai import HokusaiClient, dataset_hash
from hokusai.types import Attestation, Keys
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

ALICE = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
BOB = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"


def three_versions(client: HokusaiClient, name: str) -> None:
    """A baseline, an improvement by Alice and Bob, and a later attempt by Bob alone, measured
    by the service on a benchmark it holds (the last 2,000 rows, which no model trains on)."""
    x, y = make_classification(n_samples=6000, n_features=6, n_informative=4, random_state=5)
    rows = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    frame, y, held = rows[:4000], y[:4000], rows[4000:].assign(label=y[4000:])
    benchmark = client.benchmarks.upload(held, "label")
    assert benchmark.hash == dataset_hash(held)
    dataset = {"hash": benchmark.hash, "num_samples": benchmark.rows}
    for kind, parent, model, contributors in (
        ("baseline", None, LogisticRegression(C=0.0005).fit(frame[:100], y[:100]), None),
        (
            "improved",
            1,
            LogisticRegression().fit(frame, y),
            [{"address": ALICE, "weight": 2}, {"address": BOB, "weight": 1}],
        ),
        ("improved", 2, LogisticRegression(C=0.5).fit(frame, y), [{"address": BOB, "weight": 1}]),
    ):
        version = client.models.register(
            name,
            kind=kind,
            model_type="classification",
            dataset=dataset,
            metrics={"accuracy": model.score(frame, y)},
            contributors=contributors,
            parent_version=parent,
            benchmark={
                "metric": "accuracy",
                "direction": "higher_is_better",
                "family": "proportion",
            }
            if kind == "baseline"
            else None,
            artifact=model,
        )
        decision = version.deltaone.reason if version.deltaone else "baseline"
        basis = f", {version.deltaone.basis}" if version.deltaone else ""
        print(
            f"v{version.version} {kind}: accuracy {version.metrics['accuracy']:.4f} "
            f"({decision}{basis})"
        )


def verify_offline(attestation: Attestation, keys: Keys) -> dict[str, object]:
    """Check an attestation with standard cryptography only; return the statement it signs."""
    envelope = attestation.envelope
    payload = base64.b64decode(envelope.payload)
    # The attestation's id is the SHA-256 of the signed statement.
    assert attestation.id == "sha256:" + hashlib.sha256(payload).hexdigest()
    # DSSE: the signature covers the "pre-authentication encoding" of type and payload.
    kind = envelope.payloadType.encode()
    signed = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)
    [signature] = envelope.signatures
    [key] = [k for k in keys.keys if k.keyid == signature.keyid]
    public_key = load_pem_public_key(key.public_key_pem.encode())
    assert isinstance(public_key, Ed25519PublicKey)
    public_key.verify(base64.b64decode(signature.sig), signed)  # raises if forged
    forged = signed[:-2] + bytes([signed[-2] ^ 1]) + signed[-1:]  # one bit of the statement
    try:
        public_key.verify(base64.b64decode(signature.sig), forged)
        raise AssertionError("a changed statement must not verify")
    except InvalidSignature:
        pass
    statement: dict[str, object] = json.loads(payload)
    return statement


def verify_eip712(attestation: Attestation, keys: Keys) -> None:
    """Measured acceptances also carry an EIP-712 signature when the service has an EIP-712 key."""
    if attestation.eip712 is None:
        print("no EIP-712 signature (the service has no EIP-712 key, or DeltaOne refused)")
        return
    try:
        from eth_account import Account
        from eth_account.messages import encode_typed_data
    except ImportError:
        print("EIP-712 signature present; pip install eth-account to check it")
        return
    message = encode_typed_data(full_message=attestation.eip712.typed_data)
    signer = Account.recover_message(message, signature=attestation.eip712.signature)
    assert signer == keys.eip712_signer, (signer, keys.eip712_signer)
    print(f"EIP-712 signature verified: signed by {signer}")


def main() -> None:
    name = f"fraud-model-{uuid.uuid4().hex[:6]}"
    with HokusaiClient() as client:
        three_versions(client, name)
        print(client.lineage.mermaid(name, direction="both"))

        version = client.versions.get(name, 2)
        assert version.attestation_id is not None
        attestation = client.attestations.get(version.attestation_id)
        keys = client.attestations.keys()
        statement = verify_offline(attestation, keys)
        [subject] = statement["subject"]  # type: ignore[misc]
        decision = statement["predicate"]["decision"]  # type: ignore[index]
        print(
            f"attestation {attestation.id[:19]}... verified offline: {subject['name']}, "
            f"DeltaOne {decision['reason']}, gain {decision['gain_pp']} pp"
        )
        verify_eip712(attestation, keys)

        checked = client.attestations.verify(attestation.envelope.model_dump())
        print(
            f"the service agrees: valid={checked.valid}, "
            f"matches its record={checked.matches_record}"
        )
        chain = client.attestations.verify_chain(name)
        print(f"the model's chain of {chain.length} attestations is valid: {chain.valid}")
        report = hokusai.verify(
            client.attestations.export(name).model_dump(mode="json"),
            keys=keys.model_dump(mode="json"),
        )
        print(f"offline, hokusai.verify: {len(report.checks)} checks, valid: {report.valid}")

        for address in (ALICE, BOB):
            impact = client.contributors.impact(address)
            print(
                f"{impact.address}: {impact.contributions} contributions, "
                f"{impact.deltaone_accepted} accepted, weighted gain {impact.weighted_gain_pp} pp "
                f"({impact.accepted_weighted_gain_pp} pp accepted)"
            )


if __name__ == "__main__":
    main()
