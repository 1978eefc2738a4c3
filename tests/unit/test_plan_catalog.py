"""The catalog is refused with the file, the line and what is wrong."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provtrack.adapters.catalog_file import load_catalog, parse_catalog_text
from provtrack.cli import app
from provtrack.domain.catalog import ActivityKind, InvalidCatalog, Progress
from provtrack.domain.durations import InvalidDuration, format_duration, parse_duration

GOOD = """\
systems:
  inventory: {url: http://inv.example.net/tmf-api/resourceOrderingManagement/v4, progress: poll, pollInterval: PT30S}
workGroups:
  field-technicians: {}
services:
  fibre:
    add:
      - id: reserve-port
        system: inventory
        resourceSpecification: olt-port
        expectedDuration: PT2M
        undo: release-port
      - id: install-ont
        kind: manualTask
        workGroup: field-technicians
        after: [reserve-port]
        expectedDuration: PT3H
        pointOfNoReturn: true
    undo:
      - {id: release-port, system: inventory, resourceSpecification: olt-port, resourceAction: delete, expectedDuration: PT1M}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(InvalidCatalog) as caught:
        parse_catalog_text(text, source="catalog.yaml")
    return str(caught.value).splitlines()


def test_a_valid_catalog_is_read_with_its_systems_and_activities() -> None:
    catalog = parse_catalog_text(GOOD, source="catalog.yaml")
    assert catalog.systems["inventory"].progress is Progress.POLL
    assert catalog.systems["inventory"].poll_interval == timedelta(seconds=30)
    reserve, install = catalog.services["fibre"].activities["add"]
    assert reserve.expected_duration == timedelta(minutes=2)
    assert reserve.undo == "release-port"
    assert install.kind is ActivityKind.MANUAL_TASK
    assert install.owner == "field-technicians"
    assert install.point_of_no_return


def test_an_unknown_system_is_refused_with_its_line() -> None:
    text = GOOD.replace("        system: inventory\n", "        system: invetnory\n", 1)
    assert problems(text) == [
        "catalog.yaml:9: services.fibre.add.reserve-port.system: unknown system 'invetnory' "
        "(not declared under `systems`)"
    ]


def test_a_dependency_cycle_is_refused_with_its_line() -> None:
    text = GOOD.replace(
        "        expectedDuration: PT2M\n", "        expectedDuration: PT2M\n        after: [install-ont]\n"
    )
    [message] = problems(text)
    assert message.startswith("catalog.yaml:12: services.fibre.add: dependency cycle")
    assert "reserve-port -> install-ont -> reserve-port" in message


def test_a_bad_duration_is_refused_with_its_line() -> None:
    text = GOOD.replace("PT3H", "3 hours")
    [message] = problems(text)
    assert message.startswith(
        "catalog.yaml:17: services.fibre.add.install-ont.expectedDuration: '3 hours' is not"
    )


def test_every_problem_is_listed_at_once() -> None:
    text = (
        GOOD.replace("PT3H", "P")
        .replace("after: [reserve-port]", "after: [reserve]")
        .replace("progress: poll", "progress: push")
    )
    assert (
        len(problems(text)) == 4
    )  # progress; then the activity on the unknown system, the duration, the edge


def test_invalid_yaml_names_the_line() -> None:
    assert problems("systems:\n  a: [\n") == [
        "catalog.yaml:3: not valid YAML: expected the node content, but found '<stream end>'"
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("PT30S", timedelta(seconds=30)),
        ("P2D", timedelta(days=2)),
        ("P1DT4H", timedelta(days=1, hours=4)),
        ("P2W", timedelta(weeks=2)),
        ("PT0.5S", timedelta(milliseconds=500)),
    ],
)
def test_iso_durations_are_understood(text: str, value: timedelta) -> None:
    assert parse_duration(text) == value


@pytest.mark.parametrize("text", ["P", "PT", "2h", "P1Y", "P1M", "PT1H30", 5])
def test_durations_without_a_fixed_length_or_malformed_are_refused(text: object) -> None:
    with pytest.raises(InvalidDuration):
        parse_duration(text)


def test_a_duration_prints_back_in_iso_form() -> None:
    assert format_duration(timedelta(days=1, hours=4, seconds=5)) == "P1DT4H5S"


def test_the_demo_catalog_models_the_operator_services() -> None:
    catalog = load_catalog("demo")
    assert set(catalog.services) == {
        "ftth-residential",
        "business-ethernet-eline",
        "sdwan-site",
        "mobile-sim-port-in",
        "iptv-addon",
    }
    assert set(catalog.services["ftth-residential"].activities) == {"add", "modify", "delete"}


def test_catalog_check_reports_file_and_line_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("PT2M", "two minutes"))
    result = CliRunner().invoke(app, ["catalog", "check", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:11: services.fibre.add.reserve-port.expectedDuration" in result.output

    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    result = CliRunner().invoke(app, ["catalog", "check", str(good)])
    assert result.exit_code == 0, result.output
    assert "ok: 1 systems, 1 service specifications, 2 activities" in result.output


def test_the_documented_example_catalog_is_valid() -> None:
    text = (Path(__file__).parents[2] / "docs" / "catalog.md").read_text()
    example = text.split("## A complete example", 1)[1].split("```yaml\n", 1)[1].split("\n```", 1)[0]
    catalog = parse_catalog_text(example, source="docs/catalog.md")
    assert catalog.services["ftth-residential"].activities["add"][2].point_of_no_return
