"""End-to-end checks of the learner's view of notebooks in JupyterLab and headless Chromium.

Each test opens a notebook as a learner would, runs every cell, and then checks what the
page shows. Outputs show no tracebacks, widgets render instead of "Error displaying
widget", and progress bars are widgets, not raw tqdm text. Moving the epsilon slider
redraws its figure in place. Screenshots before and after the slider moves go to
build/screenshots/.

The tests drive the notebook through JupyterLab's command registry, which the server
exposes as window.jupyterapp. The Run menu calls the same commands.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

PlaywrightTimeoutError = pytest.importorskip("playwright.sync_api").TimeoutError

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]

SCREENSHOT_DIR = REPO_ROOT / "build" / "screenshots"
FIXTURE_NOTEBOOK = "tests/browser/fixtures/demo.ipynb"

OPEN_TIMEOUT_S = 90
RUN_ALL_TIMEOUT_S = 6 * 60
REDRAW_TIMEOUT_S = 60
WIDGET_RENDER_TIMEOUT_S = 30
POLL_INTERVAL_S = 0.5

# Real notebooks and whether their run shows a tqdm progress bar (01 simulates a survey
# of many respondents, 05 trains one model live).
NOTEBOOKS = [
    pytest.param("notebooks/01_what_dp_promises.ipynb", True, id="01_what_dp_promises"),
    pytest.param("notebooks/05_privacy_utility.ipynb", True, id="05_privacy_utility"),
]

EPSILON_LABEL = re.compile(r"epsilon|ε", re.IGNORECASE)

# Finds the open notebook panel for a path relative to the server root.
PANEL_JS = """
const panelFor = (path) => {
  const app = window.jupyterapp;
  if (!app) return null;
  for (const widget of app.shell.widgets('main')) {
    if (widget.context && widget.context.path === path && widget.content
        && widget.content.model) {
      return widget;
    }
  }
  return null;
};
"""

OPEN_STATE_JS = PANEL_JS + """
(path) => {
  const panel = panelFor(path);
  const session = panel && panel.sessionContext.session;
  return {
    app: Boolean(window.jupyterapp),
    ready: Boolean(panel && panel.context.isReady),
    kernel: session && session.kernel ? session.kernel.status : null,
    dialog: Boolean(document.querySelector('.jp-Dialog')),
  };
}
"""

EXECUTE_JS = PANEL_JS + """
async ([path, command]) => {
  const app = window.jupyterapp;
  app.shell.activateById(panelFor(path).id);
  await app.commands.execute(command);
}
"""

# Reads the run state from the notebook model and what the page renders. Cells tagged
# "raises-exception" are expected to fail (as in nbval), so their errors are not counted.
INSPECT_JS = PANEL_JS + """
(path) => {
  const panel = panelFor(path);
  const session = panel.sessionContext.session;
  const state = {
    kernel: session && session.kernel ? session.kernel.status : null,
    codeCells: 0, unexecuted: 0, running: 0,
    errors: [], tracebacks: [], rawProgress: [], widgetErrors: [],
    widgetViews: panel.node.querySelectorAll('.jupyter-widgets').length,
    sliders: panel.node.querySelectorAll('.widget-slider').length,
    progressBars: panel.node.querySelectorAll('.widget-hprogress').length,
  };
  panel.content.widgets.forEach((cell, index) => {
    const model = cell.model;
    if (model.type !== 'code') return;
    state.codeCells += 1;
    const tags = model.getMetadata('tags') || [];
    const expectsError = tags.includes('raises-exception');

    const prompt = cell.node.querySelector('.jp-InputPrompt');
    if (prompt && prompt.textContent.includes('*')) state.running += 1;
    if (model.sharedModel.getSource().trim() && model.executionCount == null) {
      state.unexecuted += 1;
    }

    for (let i = 0; i < model.outputs.length; i++) {
      const output = model.outputs.get(i).toJSON();
      if (output.output_type === 'error' && !expectsError) {
        state.errors.push(`cell ${index}: ${output.ename}: ${output.evalue}`);
      }
    }
    const stderr = cell.node.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
    for (const node of stderr) {
      if (node.innerText.includes('Traceback') && !expectsError) {
        state.tracebacks.push(`cell ${index}: ${node.innerText.slice(0, 2000)}`);
      }
    }
    for (const node of cell.node.querySelectorAll('.jp-OutputArea-output')) {
      const text = node.innerText;
      if (/\\d+%\\|/.test(text)) state.rawProgress.push(`cell ${index}: ${text.slice(0, 200)}`);
      if (text.includes('Error displaying widget')) {
        state.widgetErrors.push(`cell ${index}: ${text.slice(0, 500)}`);
      }
    }
  });
  return state;
}
"""

# Lists, for each ipywidgets Output in the slider's cell, a fingerprint of each image:
# the length and a 32-bit hash of its source, which is a data: URL of the PNG.
FIGURES_JS = """
(slider) => {
  const fingerprint = (text) => {
    let hash = 0;
    for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) | 0;
    return `${text.length}:${(hash >>> 0).toString(16)}`;
  };
  const cell = slider.closest('.jp-Cell');
  return Array.from(cell.querySelectorAll('.widget-output'), (output) =>
    Array.from(output.querySelectorAll('img'), (img) => fingerprint(img.src)));
}
"""


def open_notebook(page, lab_server, path: str) -> None:
    """Open a notebook in a fresh workspace and wait until its kernel is idle."""
    page.goto(lab_server.url(f"/lab/tree/{path}", reset=""))

    deadline = time.monotonic() + OPEN_TIMEOUT_S
    state = None
    while time.monotonic() < deadline:
        state = page.evaluate(OPEN_STATE_JS, path)
        if state["dialog"]:
            # A notebook without kernel metadata opens a kernel selection dialog, so
            # accept the default kernel.
            page.locator(".jp-Dialog .jp-mod-accept").click()
        elif state["ready"] and state["kernel"] == "idle":
            return
        time.sleep(POLL_INTERVAL_S)
    raise TimeoutError(
        f"{path} did not open with an idle kernel within {OPEN_TIMEOUT_S} s; "
        f"last state: {state}. Server log:\n{lab_server.log_tail()}"
    )


def run_all_cells(page, lab_server, path: str, timeout_s: float = RUN_ALL_TIMEOUT_S) -> dict:
    """Clear outputs, run every cell, and wait until the run ends.

    The run ends when the kernel is idle, no cell shows the busy prompt and every
    non-empty code cell has an execution count. It ends earlier when a cell fails,
    because the kernel then aborts the queued cells. Returns the last INSPECT_JS state.
    """
    execute(page, path, "notebook:clear-all-cell-outputs")
    execute(page, path, "notebook:run-all-cells")

    deadline = time.monotonic() + timeout_s
    finished_polls = 0
    state = None
    while time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S)
        state = page.evaluate(INSPECT_JS, path)
        if state["kernel"] == "dead":
            raise RuntimeError(
                f"The kernel of {path} died while running. Server log:\n"
                f"{lab_server.log_tail()}"
            )
        settled = state["kernel"] == "idle" and state["running"] == 0
        finished = settled and (state["unexecuted"] == 0 or state["errors"])
        # Require two finished polls in a row, because the kernel status, the prompts
        # and the execution counts change on separate messages.
        finished_polls = finished_polls + 1 if finished else 0
        if finished_polls >= 2:
            return state
    raise TimeoutError(
        f"Running all cells of {path} did not finish within {timeout_s:.0f} s; "
        f"last state: {state}. Server log:\n{lab_server.log_tail()}"
    )


def execute(page, path: str, command: str) -> None:
    page.evaluate(EXECUTE_JS, [path, command])


def wait_for_widget_views(page, path: str, selector: str) -> None:
    """Wait until the page shows a widget view matching the selector."""
    try:
        page.locator(f".jp-NotebookPanel {selector}").first.wait_for(
            state="attached", timeout=WIDGET_RENDER_TIMEOUT_S * 1000
        )
    except PlaywrightTimeoutError as error:
        state = page.evaluate(INSPECT_JS, path)
        raise AssertionError(
            f"No {selector} widget view appeared in {path} within "
            f"{WIDGET_RENDER_TIMEOUT_S} s; state: {state}"
        ) from error


def find_epsilon_slider(page):
    label = page.locator(".widget-label", has_text=EPSILON_LABEL)
    sliders = page.locator(".jp-NotebookPanel .widget-slider").filter(has=label)
    assert sliders.count() >= 1, "no slider with 'epsilon' or 'ε' in its description"
    return sliders.first


def figure_fingerprints(slider) -> list[list[str]]:
    return slider.evaluate(FIGURES_JS)


def move_slider(page, slider) -> tuple[str, str]:
    """Move the slider three keyboard steps and return its (old, new) aria-valuenow.

    Steps go right, or left when the slider already sits at its maximum.
    """
    handle = slider.locator(".noUi-handle")
    before = handle.get_attribute("aria-valuenow")
    at_max = float(before) >= float(handle.get_attribute("aria-valuemax"))
    key = "ArrowLeft" if at_max else "ArrowRight"

    handle.focus()
    for _ in range(3):
        page.keyboard.press(key)
        time.sleep(0.2)
    return before, handle.get_attribute("aria-valuenow")


def wait_for_redraw(slider, before: list[list[str]]) -> list[list[str]]:
    """Wait until the figure images differ from `before` and stay the same for 1 s."""
    deadline = time.monotonic() + REDRAW_TIMEOUT_S
    last = figure_fingerprints(slider)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        current = figure_fingerprints(slider)
        if current != before and current == last:
            return current
        last = current
    return last


def screenshot(page, slider, name: str) -> Path:
    """Scroll the slider to the top of the notebook and save the visible page."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    slider.evaluate(
        "(element) => (element.closest('.jp-OutputArea-child') || element)"
        ".scrollIntoView({block: 'start'})"
    )
    time.sleep(0.5)
    path = SCREENSHOT_DIR / name
    page.screenshot(path=str(path))
    return path


def check_notebook(page, lab_server, path: str, *, expects_progress_bar: bool) -> None:
    """Run a notebook as a learner would and check what the page renders."""
    notebook_file = REPO_ROOT / path
    saved_bytes = notebook_file.read_bytes()
    prefix = Path(path).stem.split("_")[0]

    open_notebook(page, lab_server, path)
    state = run_all_cells(page, lab_server, path)
    assert state["errors"] == [], f"cells of {path} raised errors"
    assert state["tracebacks"] == [], f"outputs of {path} show tracebacks"
    assert state["unexecuted"] == 0, f"{state['unexecuted']} cells of {path} did not run"

    wait_for_widget_views(page, path, ".widget-slider")
    state = page.evaluate(INSPECT_JS, path)
    assert state["rawProgress"] == [], f"{path} shows progress bars as raw text"
    if expects_progress_bar:
        wait_for_widget_views(page, path, ".widget-hprogress")
        state = page.evaluate(INSPECT_JS, path)
    assert state["widgetErrors"] == [], f"widgets of {path} failed to display"
    assert state["widgetViews"] > 0, f"{path} rendered no widget views"
    if expects_progress_bar:
        assert state["progressBars"] > 0, f"{path} rendered no progress bar widget"

    slider = find_epsilon_slider(page)
    figures_before = figure_fingerprints(slider)
    figure_outputs = [i for i, sources in enumerate(figures_before) if sources]
    assert figure_outputs, f"no figure in an ipywidgets Output in the slider's cell of {path}"
    for i in figure_outputs:
        assert len(figures_before[i]) == 1, f"Output {i} contains {len(figures_before[i])} figures"
    screenshot(page, slider, f"{prefix}-before.png")

    value_before, value_after = move_slider(page, slider)
    assert value_after != value_before, "the epsilon slider did not move"
    figures_after = wait_for_redraw(slider, figures_before)
    screenshot(page, slider, f"{prefix}-after.png")

    state = page.evaluate(INSPECT_JS, path)
    assert state["tracebacks"] == [], "the slider's callback raised an error"
    assert state["widgetErrors"] == [], "widgets failed to display after the slider moved"
    assert figures_after != figures_before, "the figure did not change after the slider moved"
    for i in figure_outputs:
        count = len(figures_after[i])
        assert count == 1, f"Output {i} contains {count} figures after the slider moved"

    assert notebook_file.read_bytes() == saved_bytes, f"the test changed {path} on disk"


def test_fixture_notebook_renders_widgets(lab_page, lab_server):
    check_notebook(lab_page, lab_server, FIXTURE_NOTEBOOK, expects_progress_bar=True)


def test_harness_reports_cell_error(lab_page, lab_server):
    """The run stops early and reports the error when a cell raises."""
    page = lab_page
    open_notebook(page, lab_server, FIXTURE_NOTEBOOK)

    execute(page, FIXTURE_NOTEBOOK, "notebook:insert-cell-above")
    page.locator(".jp-NotebookPanel .jp-Cell").first.locator(".cm-content").click()
    page.keyboard.type("1 / 0")
    page.keyboard.press("Escape")

    started = time.monotonic()
    state = run_all_cells(page, lab_server, FIXTURE_NOTEBOOK, timeout_s=120)
    elapsed = time.monotonic() - started

    assert len(state["errors"]) == 1
    assert "ZeroDivisionError" in state["errors"][0]
    assert len(state["tracebacks"]) == 1
    assert "ZeroDivisionError" in state["tracebacks"][0]
    assert state["unexecuted"] > 0, "cells after the failing cell should not run"
    assert elapsed < 60, f"the run took {elapsed:.0f} s to report a failure in the first cell"


@pytest.mark.parametrize(("path", "expects_progress_bar"), NOTEBOOKS)
def test_notebook_runs_in_jupyterlab(lab_page, lab_server, path, expects_progress_bar):
    check_notebook(lab_page, lab_server, path, expects_progress_bar=expects_progress_bar)
