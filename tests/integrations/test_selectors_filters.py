"""AppUserFilter: the users table's filters, shared with the REST API (/api/v1/users)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from integrations.filters import AppUserFilter
from integrations.models import AppUser
from integrations.selectors.users import directory_user_queryset
from tests.dashboard.builders import add_admin, ago, build_tenant
from tests.read_models import refresh

pytestmark = pytest.mark.django_db


def usernames(params: dict, queryset=None) -> list[str]:
    f = AppUserFilter({"ordering": "username", **params}, queryset=queryset or directory_user_queryset())
    assert f.is_valid(), f.errors
    return [u.username for u in f.qs]


def test_works_on_a_plain_directory_queryset_without_annotations():
    """The API passes its own queryset; sorting by an annotation must still work."""
    t = build_tenant(people=3, apps=1)
    plain = AppUser.objects.filter(application=t.directory)
    assert usernames({"ordering": "-last_used"}, plain) == ["person1", "person2", "person0"]
    assert usernames({"ordering": "-apps"}, plain)[0].startswith("person")


def test_search_matches_every_word_in_any_name_field():
    build_tenant(people=12, apps=0)
    assert usernames({"q": "person11"}) == ["person11"]
    assert usernames({"q": "pat person1"}) == ["person1", "person10", "person11"]
    assert usernames({"q": "PERSON3@ACME"}) == ["person3"]
    assert usernames({"q": "nobody"}) == []


def test_search_treats_like_wildcards_and_backslashes_as_text():
    t = build_tenant(people=3, apps=0)
    AppUser.objects.filter(pk=t.people[1].pk).update(username="a_b%c\\d")
    assert usernames({"q": "a_b%c\\d"}) == ["a_b%c\\d"]
    assert usernames({"q": "%"}) == ["a_b%c\\d"]
    assert usernames({"q": "_"}) == ["a_b%c\\d"]
    assert usernames({"q": "\\"}) == ["a_b%c\\d"]


def test_search_works_inside_a_subquery():
    """The API may filter with this queryset as a subquery, where Django renames the table."""
    build_tenant(people=12, apps=0)
    f = AppUserFilter({"q": "person11"}, queryset=directory_user_queryset())
    assert f.is_valid()
    outer = AppUser.objects.filter(pk__in=f.qs.values("pk"))
    assert [u.username for u in outer] == ["person11"]


def test_connection_filter():
    a = build_tenant(people=2, apps=0, name="A")
    build_tenant(people=3, apps=0, name="B")
    assert len(usernames({})) == 5
    assert usernames({"connection": a.connection.pk}) == ["person0", "person1"]


def test_removed_people_only_when_asked_for():
    t = build_tenant(people=3, apps=0)
    AppUser.objects.filter(pk=t.people[2].pk).update(status="removed", removed_at=timezone.now())
    AppUser.objects.filter(pk=t.people[1].pk).update(status="suspended")
    assert usernames({}) == ["person0", "person1"]
    assert usernames({"status": "removed"}) == ["person2"]
    assert usernames({"status": "suspended"}) == ["person1"]
    assert usernames({"status": "active"}) == ["person0"]


def test_role_user_admin_or_admin_role_name():
    t = build_tenant(people=2, apps=0)
    add_admin(t, role="Help Desk")
    AppUser.objects.filter(pk=t.people[1].pk).update(is_admin=True, role="Administrator With Billing")
    assert usernames({"role": "user"}) == ["person0"]
    assert len(usernames({"role": "admin"})) == 2
    assert usernames({"role": "Administrator With Billing"}) == ["person1"]
    assert usernames({"role": "Manager"}) == []


def test_app_filter_means_can_use_the_app():
    t = build_tenant(people=3, apps=2)
    AppUser.objects.filter(application=t.apps[1], directory_user=t.people[0]).update(
        removed_at=timezone.now(), status="removed"
    )
    assert usernames({"app": t.apps[1].pk}) == ["person1", "person2"]
    # The directory application itself: everyone of that account.
    assert usernames({"app": t.directory.pk}) == ["person0", "person1", "person2"]


def test_inactive_days_means_no_use_anywhere_including_never():
    t = build_tenant(people=6, apps=1)
    # Person i: JumpCloud i days ago, app i days ago; person 0 never.
    assert usernames({"inactive_days": 3}) == ["person0", "person3", "person4", "person5"]
    # Recent use of any app makes a person active, whatever the portal says.
    AppUser.objects.filter(application=t.apps[0], directory_user=t.people[5]).update(last_used_at=ago(0.5))
    refresh(t.connection)
    assert usernames({"inactive_days": 3}) == ["person0", "person3", "person4"]


def test_inactive_days_never_claims_people_of_unmeasured_accounts():
    build_tenant(people=2, apps=1, usage=False, name="No insights")
    assert usernames({"inactive_days": 30}) == []


def test_invalid_values_are_reported_not_ignored():
    build_tenant(people=1, apps=0)
    for params in (
        {"inactive_days": "0"},
        {"inactive_days": "abc"},
        {"status": "ghost"},
        {"ordering": "password"},
        {"app": "999999"},
    ):
        f = AppUserFilter(params, queryset=directory_user_queryset())
        assert not f.is_valid(), params


def test_orderings():
    t = build_tenant(people=3, apps=2)
    AppUser.objects.filter(application=t.apps[0], directory_user=t.people[2]).delete()
    refresh(t.connection)
    assert usernames({"ordering": "apps"})[0] == "person2"
    assert usernames({"ordering": "-last_login"}) == ["person1", "person2", "person0"]
    assert usernames({"ordering": "-username"}) == ["person2", "person1", "person0"]
    for key in ("name", "email", "account", "status", "role", "created", "-created", "last_used"):
        assert len(usernames({"ordering": key})) == 3


def test_the_search_expression_is_the_one_the_trigram_index_is_built_on():
    import importlib

    from django.db import connection as db

    from integrations.filters import PEOPLE_SEARCH_SQL

    migration = importlib.import_module("dashboard.migrations.0002_people_search_trigram")
    assert PEOPLE_SEARCH_SQL.startswith(migration.EXPRESSION + " LIKE")
    build_tenant(people=3, apps=0)
    f = AppUserFilter({"q": "person2"}, queryset=directory_user_queryset())
    assert f.is_valid()
    sql, params = f.qs.values("pk").query.sql_with_params()
    with db.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'dash_appuser_search_trgm'")
        indexdef = cursor.fetchone()[0]
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # PostgreSQL prints both expressions in the same normalised form; on 3 rows it rightly picks
    # another index, so compare the expressions (what can silently drift) rather than the plan.
    indexed = indexdef.split("USING gin (", 1)[1].rsplit(" gin_trgm_ops)", 1)[0]
    assert indexed in plan, (indexed, plan)
    # The index is partial: the query must say what its predicate says.
    assert "WHERE (directory_user_id IS NULL)" in indexdef and '"directory_user_id" IS NULL' in sql
