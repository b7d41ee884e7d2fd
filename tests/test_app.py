"""Headless page tests with Streamlit's AppTest on the embedded dataset."""

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO

APP = str(REPO / "app.py")


@pytest.fixture
def app(default_ds):
    return AppTest.from_file(APP, default_timeout=120).run()


def test_data_page_renders_filters_and_plays(app, default_ds):
    assert not app.exception
    assert app.title[0].value == "Data"
    assert len(app.get("audio")) == 1
    assert len(app.get("plotly_chart")) >= 3  # counts, waveform, spectrogram
    app.multiselect(key="f_label").set_value(["speech"]).run()
    assert not app.exception
    table = app.dataframe[1].value
    assert len(table) == (default_ds.manifest["label"] == "speech").sum()
    assert set(table["label"]) == {"speech"}


def test_split_page_makes_and_audits_a_split(app):
    app.switch_page("views/split_audit.py").run()
    assert not app.exception
    app.text_input[0].set_value("apptest")
    app.button[0].click().run()  # the form's submit button
    assert not app.exception
    assert any("saved split 'apptest'" in s.value for s in app.success)
    assert any("not audited" in m.value for m in app.markdown)
    app.checkbox[0].uncheck().run()  # structural checks only: fast
    next(b for b in app.button if b.label == "Run audit").click().run()
    assert not app.exception
    assert any("clean" in m.value for m in app.markdown)
    app.switch_page("views/data.py").run()
    app.selectbox(key="data_split").set_value("apptest").run()
    assert not app.exception
    assert "split" in app.dataframe[1].value.columns


def _fields_app(remember: bool = True) -> None:
    import streamlit as st

    from ui.state import remember_fields

    if remember:
        remember_fields(("f_",))
    if st.session_state.get("show", True):  # another page: the field is not drawn
        st.number_input("Epochs", 0, 10, 1, key="f_x")


def test_a_form_keeps_its_values_while_the_user_visits_another_page():
    from streamlit.testing.v1 import AppTest

    for remember, expected in ((True, 7), (False, 1)):  # without it Streamlit forgets: the test can fail
        at = AppTest.from_function(_fields_app, kwargs={"remember": remember}).run()
        at.number_input(key="f_x").set_value(7).run()
        at.session_state["show"] = False
        at.run()
        at.run()  # a second run on the other page: Streamlit has dropped the undrawn widget's state
        at.session_state["show"] = True
        at.run()
        assert at.number_input(key="f_x").value == expected


def test_no_button_on_a_page_carries_a_remembered_prefix():
    """`remember_fields` restores every key with its prefixes, and Streamlit refuses a button's state set
    that way (a sweep's export button once broke the Runs page): buttons must use other keys."""
    import ast

    from tests.conftest import REPO

    buttons = {"button", "download_button", "form_submit_button", "export_buttons"}
    for view in sorted((REPO / "views").glob("*.py")):
        tree = ast.parse(view.read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
        name = lambda c: c.func.attr if isinstance(c.func, ast.Attribute) else getattr(c.func, "id", "")  # noqa: E731
        prefixes = tuple(
            e.value
            for c in calls
            if name(c) == "remember_fields"
            for e in c.args[0].elts
            if isinstance(e, ast.Constant)
        )
        if not prefixes:
            continue
        for c in calls:
            if name(c) not in buttons:
                continue
            keys = [k.value for k in c.keywords if k.arg == "key"]
            if name(c) == "export_buttons":
                keys += c.args[3:4]
            for k in keys:
                head = k.values[0] if isinstance(k, ast.JoinedStr) and k.values else k
                text = head.value if isinstance(head, ast.Constant) and isinstance(head.value, str) else ""
                assert not text.startswith(prefixes), (
                    f"{view.name}:{c.lineno}: button key {text!r} starts with {prefixes}"
                )
