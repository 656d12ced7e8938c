"""The ``profileParams`` of a server-key order, checked against the profile before it is sent."""

from __future__ import annotations

from collections.abc import Sequence

from sectigo_svc.domain.errors import InvalidArgument
from sectigo_svc.domain.models import IssueSpec, Subject
from sectigo_svc.sectigo import params as p
from sectigo_svc.sectigo.models import ProfileParameter

# Sectigo parameter -> the IssueCertificate field a caller would fix.
FIELDS = {
    p.COMMON_NAME: "server_key.common_name",
    p.DNS_NAME: "server_key.dns_names",
    p.PKCS12_PASSWORD: "server_key.pkcs12_password",
    p.ORGANIZATION: "server_key.subject.organization",
    p.LOCALITY: "server_key.subject.locality",
    p.STATE: "server_key.subject.state",
    p.COUNTRY: "server_key.subject.country",
}


def order_params(
    spec: IssueSpec,
    password: str,
    parameters: Sequence[ProfileParameter],
    defaults: Subject,
) -> dict[str, str]:
    """The parameters to send: the spec's values (subject defaults filling gaps), limited to the
    profile's parameters, or :class:`InvalidArgument` naming the first field the profile refuses.
    """
    subject = spec.subject
    wanted = {
        p.COMMON_NAME: spec.common_name,
        p.DNS_NAME: "\n".join(spec.dns_names),
        p.PKCS12_PASSWORD: password,
        p.ORGANIZATION: subject.organization or defaults.organization,
        p.LOCALITY: subject.locality or defaults.locality,
        p.STATE: subject.state or defaults.state,
        p.COUNTRY: subject.country or defaults.country,
    }
    params = p.only_profile_params(wanted, parameters)
    problems = p.check_params(params, parameters)
    if problems:
        first = problems[0]
        field = FIELDS.get(first.name, f"profile parameter {first.name}")
        raise InvalidArgument(field, f"{first.message} (profile parameter {first.name})")
    return params
