"""Staff passwords are argon2id hashes, checked without exceptions leaking out."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, extract_parameters
from argon2.profiles import RFC_9106_LOW_MEMORY

from verify_service.staff import passwords
from verify_service.staff.models import Reviewer, Role
from verify_service.staff.passwords import check_password, set_password


def _reviewer(password_hash: str) -> Reviewer:
    return Reviewer(email="r@example.com", display_name="R", role=Role.REVIEWER, password_hash=password_hash)


def test_right_password_passes_wrong_one_fails() -> None:
    reviewer = _reviewer(PasswordHasher().hash("correct horse battery"))
    assert reviewer.password_hash.startswith("$argon2id$")
    assert check_password(reviewer, "correct horse battery") is True
    assert check_password(reviewer, "correct horse batterY") is False
    assert check_password(reviewer, "") is False


@pytest.mark.usefixtures("real_password_hashing")
def test_production_hashes_use_argon2_cffis_rfc_9106_parameters() -> None:
    """The rest of the suite hashes with cheap test parameters (tests/support/speed.py); the service must not."""
    hasher = passwords._hasher
    assert (hasher.type, hasher.time_cost, hasher.memory_cost, hasher.parallelism, hasher.hash_len,
            hasher.salt_len) == (RFC_9106_LOW_MEMORY.type, RFC_9106_LOW_MEMORY.time_cost,
                                 RFC_9106_LOW_MEMORY.memory_cost, RFC_9106_LOW_MEMORY.parallelism,
                                 RFC_9106_LOW_MEMORY.hash_len, RFC_9106_LOW_MEMORY.salt_len)
    reviewer = _reviewer("!unset")
    set_password(reviewer, "correct horse battery")
    assert extract_parameters(reviewer.password_hash) == RFC_9106_LOW_MEMORY
    assert check_password(reviewer, "correct horse battery") is True
    # The dummy hash every refusal burns (sign-in too) costs as much as a real hash.
    assert extract_parameters(passwords._dummy_hash()) == RFC_9106_LOW_MEMORY


def test_a_corrupt_stored_hash_fails_closed() -> None:
    assert check_password(_reviewer("not-a-hash"), "anything") is False
    assert check_password(_reviewer("$argon2id$v=19$m=65536,t=3,p=4$broken"), "anything") is False


def test_roles_include_the_ones_below() -> None:
    assert Role.ADMIN.includes(Role.LEAD) and Role.LEAD.includes(Role.REVIEWER)
    assert not Role.REVIEWER.includes(Role.LEAD) and not Role.LEAD.includes(Role.ADMIN)
