"""What people type on the pages follows the API's rule for text (README "Security"): comments
keep line breaks and tabs but no other control characters; a delegation's note is one line."""

import pytest

from approvals.models import Decision, Delegation
from approvals.tests.conftest import decide_page
from approvals.tests.test_delegation import name_delegate

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("character", ["\x1b", "\x07", "\x7f", "\x9b"])
def test_a_comment_with_control_characters_is_refused(client, register, manager, character):
    created = register()

    response = decide_page(client, manager, created["id"], "rejected", f"No{character}[31m")

    assert response.status_code == 400
    assert "control characters" in response.content.decode()
    assert not Decision.objects.exists()


def test_a_comment_keeps_its_line_breaks_and_tabs(client, register, manager):
    created = register()

    decide_page(client, manager, created["id"], "rejected", "Too much:\r\n\thotel\nand train")

    assert Decision.objects.get().comment == "Too much:\r\n\thotel\nand train"


@pytest.mark.parametrize("character", ["\n", "\r", "\t", "\x1b", "\u2028", "\u202e"])
def test_a_delegation_note_must_be_one_line(client, make_user, character):
    alice = make_user("alice")
    make_user("bob")

    response = name_delegate(client, alice, delegate="bob@example.com", note=f"Away{character}x")

    assert response.status_code == 400
    assert "control characters" in response.content.decode()
    assert not Delegation.objects.exists()
