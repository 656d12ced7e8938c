"""The Sectigo API's field names in the order its documentation lists them (shared by tests)."""

AUTHORITY_KEYS = [
    "id",
    "ecosystemId",
    "signerCertificateId",
    "ecosystemName",
    "balance",
    "enabled",
    "profileId",
    "profileName",
]
BATCH_KEYS = [
    "batchId",
    "orderNumber",
    "creationDate",
    "profile",
    "size",
    "status",
    "active",
    "batchName",
    "rejectReason",
    "generatorParametersValues",
    "userId",
    "downloadable",
    "rejectable",
]
