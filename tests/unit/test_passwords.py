"""Staff passwords are argon2id hashes, checked without exceptions leaking out."""

from __future__ import annotations

from argon2 import PasswordHasher

from verify_service.staff.models import Reviewer, Role
from verify_service.staff.passwords import check_password


def _reviewer(password_hash: str) -> Reviewer:
    return Reviewer(email="r@example.com", display_name="R", role=Role.REVIEWER, password_hash=password_hash)


def test_right_password_passes_wrong_one_fails() -> None:
    reviewer = _reviewer(PasswordHasher().hash("correct horse battery"))
    assert reviewer.password_hash.startswith("$argon2id$")
    assert check_password(reviewer, "correct horse battery") is True
    assert check_password(reviewer, "correct horse batterY") is False
    assert check_password(reviewer, "") is False


def test_a_corrupt_stored_hash_fails_closed() -> None:
    assert check_password(_reviewer("not-a-hash"), "anything") is False
    assert check_password(_reviewer("$argon2id$v=19$m=65536,t=3,p=4$broken"), "anything") is False


def test_roles_include_the_ones_below() -> None:
    assert Role.ADMIN.includes(Role.LEAD) and Role.LEAD.includes(Role.REVIEWER)
    assert not Role.REVIEWER.includes(Role.LEAD) and not Role.LEAD.includes(Role.ADMIN)
