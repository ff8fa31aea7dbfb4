from __future__ import annotations

from fastapi import APIRouter

from app.api.auth import PrincipalDep, ReaderDep
from app.api.deps import AttestationServiceDep, MlModelServiceDep
from app.api.errors import AUTHENTICATED, problems
from app.api.routers import API_PREFIX, Limit, Offset
from app.api.routing import Route
from app.schemas.attestations import (
    AttestationBundle,
    AttestationPage,
    AttestationRead,
    ChainVerification,
    Keys,
    Verification,
    VerifyRequest,
)
from app.schemas.common import DEFAULT_LIMIT

router = APIRouter(
    prefix=API_PREFIX, tags=["attestations"], responses=problems(*AUTHENTICATED), route_class=Route
)


@router.get("/attestations/keys", response_model=Keys, responses=problems(422))
async def list_signing_keys(_: ReaderDep, attestations: AttestationServiceDep) -> Keys:
    """The public keys that sign attestations (Ed25519, PEM; key id = SHA-256 of the raw key),
    and the EIP-712 signer address when one is configured."""
    return await attestations.keys()


@router.post("/attestations/verify", response_model=Verification, responses=problems(422))
async def verify_attestation(
    body: VerifyRequest, _: PrincipalDep, attestations: AttestationServiceDep
) -> Verification:
    """Check a DSSE envelope: is the signature valid, which key made it, and does it match the
    stored record? Any valid key may ask."""
    return await attestations.verify(body.envelope)


@router.get(
    "/attestations/{attestation_id}", response_model=AttestationRead, responses=problems(404, 422)
)
async def get_attestation(
    attestation_id: str, _: ReaderDep, attestations: AttestationServiceDep
) -> AttestationRead:
    """One attestation: the in-toto statement, its DSSE envelope and, for accepted DeltaOnes
    when configured, the EIP-712 signature."""
    return await attestations.get(attestation_id)


@router.get(
    "/models/{name}/attestations",
    response_model=AttestationPage,
    responses=problems(404, 422),
)
async def list_model_attestations(
    name: str,
    _: ReaderDep,
    ml_models: MlModelServiceDep,
    attestations: AttestationServiceDep,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> AttestationPage:
    """A model's attestations, oldest first."""
    model = await ml_models.get_model(name)
    items, total = await attestations.list_for_model(model, limit=limit, offset=offset)
    return AttestationPage(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/models/{name}/attestations/export",
    response_model=AttestationBundle,
    responses=problems(404, 422),
)
async def export_model_attestations(
    name: str, _: ReaderDep, ml_models: MlModelServiceDep, attestations: AttestationServiceDep
) -> AttestationBundle:
    """The model's whole attestation chain with the public keys that signed it, for
    `hokusai verify` to check offline (signatures, ids, links) with nothing else."""
    return await attestations.export(await ml_models.get_model(name))


@router.get(
    "/models/{name}/attestations/verify",
    response_model=ChainVerification,
    responses=problems(404, 422),
)
async def verify_model_attestations(
    name: str, _: ReaderDep, ml_models: MlModelServiceDep, attestations: AttestationServiceDep
) -> ChainVerification:
    """Verify a model's whole chain: digests, signatures and links; names the first broken one."""
    return await attestations.verify_chain(await ml_models.get_model(name))
