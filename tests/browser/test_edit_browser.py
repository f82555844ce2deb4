"""`ctxgen edit` in a real browser: drag, resize and nudge boxes, reorder layers, see validate's messages beside the
fields, render on the tiny model, upload a reference, save the YAML (comments kept). Screenshots of each state
go to tests/artifacts/edit/."""

from __future__ import annotations

import time

import pytest

from ctxgen.core.errors import SceneError
from ctxgen.scene.images import check_references
from ctxgen.scene.model import load_scene
from tests.browser.edit_scenes import SCENE, blob, png_bytes

pytestmark = pytest.mark.browser


def wait_until(check, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def to_screen(page, x: float, y: float) -> tuple[float, float]:
    """Scene pixels -> page pixels on the canvas (256x256 scene)."""
    box = page.locator("#canvas").bounding_box()
    s = box["width"] / 256
    return box["x"] + x * s, box["y"] + y * s


def drag(page, start: tuple[float, float], by: tuple[float, float]) -> None:
    """Press at a scene point and move by scene pixels, in small steps, then release."""
    x, y = to_screen(page, *start)
    s = page.locator("#canvas").bounding_box()["width"] / 256
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + by[0] * s, y + by[1] * s, steps=12)
    page.mouse.up()


def settled(page, served) -> None:
    """Wait until the page shows the preview of the server's current version."""
    wait_until(lambda: page.get_attribute("body", "data-preview-version") == str(served.session.version),
               what="the preview of the latest edit")


def test_drag_resize_layer_and_save(page, served, shot):
    shot(page, "01-loaded")
    drag(page, (64, 192), (64, -32))  # the ball, by its middle; snapping to the 16 px grid
    wait_until(lambda: "box: [80, 112, 176, 208]" in served.session.text, what="the dragged box in the YAML")
    settled(page, served)
    shot(page, "02-dragged")

    page.locator("#canvas .box[data-i='1'] rect.frame").click(position={"x": 20, "y": 60})
    drag(page, (240, 128), (16, 64))  # the kite's bottom-right handle; the right edge stops at the canvas
    wait_until(lambda: "box: [128, 16, 256, 192]   # up in the sky" in served.session.text, what="the resized box")
    settled(page, served)
    assert page.input_value("#instance-form [data-part='2']") == "256", "the form follows the canvas"
    page.keyboard.press("ArrowLeft")  # the canvas has the focus: one grid step
    wait_until(lambda: "box: [112, 16, 240, 192]   # up in the sky" in served.session.text, what="the nudged box")
    settled(page, served)
    shot(page, "03-resized")

    before = page.inner_text("#footer")
    assert "layers bottom → top: kite, ball" in before
    page.click("[data-layer='front']")
    wait_until(lambda: "z:" in served.session.text, what="z written")
    settled(page, served)
    after = page.inner_text("#footer")
    assert "layers bottom → top: ball, kite" in after
    shot(page, "04-layer-order")

    page.click("#save")
    wait_until(lambda: served.path.read_text() == served.session.text, what="the saved file")
    saved = served.path.read_text()
    expected = (SCENE.replace("box: [16, 144, 112, 240]", "box: [80, 112, 176, 208]")
                .replace("box: [128, 16, 240, 128]", "box: [112, 16, 240, 192]"))
    assert [line for line in saved.splitlines() if "z:" not in line] == expected.splitlines()
    assert served.path.with_name("scene.yaml.bak").read_text() == SCENE
    check_references(load_scene(served.path))
    wait_until(lambda: page.is_hidden("#dirty"), what="the unsaved mark to go")
    shot(page, "05-saved")


def test_an_invalid_size_shows_validates_message_beside_the_field(page, served, shot):
    page.fill("#f-width", "250")
    msg = page.locator(".field[data-path='size'] .msg")
    msg.wait_for()
    assert msg.inner_text() == "width 250 is outside 256..2048"
    try:
        load_scene_text = served.session.text
        served.path.with_name("typed.yaml").write_text(load_scene_text)
        check_references(load_scene(served.path.with_name("typed.yaml")))
        raise AssertionError("validate accepted the size")
    except SceneError as exc:
        assert exc.issues[0].endswith("3:7 size: width 250 is outside 256..2048")
    assert "3:7 size: width 250 is outside 256..2048" in page.inner_text("#problems")
    assert page.is_visible("#canvas-note")
    shot(page, "06-invalid-size")
    page.fill("#f-width", "256")
    msg.wait_for(state="detached")
    assert page.is_hidden("#problems")


def test_a_file_that_does_not_parse_shows_the_problem_and_can_be_fixed(page, served, shot):
    page.click(".tabs [data-tab='yaml']")
    page.fill("#yaml-text", SCENE.replace("size: [256, 256]", "size: [256, 256"))
    wait_until(lambda: "yaml: " in page.inner_text("#problems"), what="the YAML problem")
    assert served.session.state().data is None
    shot(page, "07-yaml-does-not-parse")
    page.fill("#yaml-text", SCENE)
    wait_until(lambda: page.is_hidden("#problems"), what="the problem to go")
    assert served.session.state().scene is not None


def test_render_on_the_tiny_model_shows_the_image(page, served, shot):
    page.click(".tabs [data-tab='render']")
    page.click("#render")
    page.wait_for_selector("#result:not([hidden]) #result-image[src*='/api/renders/']", timeout=90_000)
    wait_until(lambda: page.evaluate("() => document.getElementById('result-image').naturalWidth") == 256,
               what="the rendered image to load")
    assert page.locator("#history figure").count() == 1
    assert (served.path.parent / "outputs" / "scene" / "seed-7.png").is_file()
    assert "rendered in" in page.inner_text("#status")
    shot(page, "08-rendered")
    page.click("#overlay-tabs button:text('masks')")
    wait_until(lambda: "masks.png" in (page.get_attribute("#result-image", "src") or ""), what="the mask overlay")
    shot(page, "09-render-overlay")


def test_upload_adds_an_instance_and_the_yaml_tab_shows_the_file(page, served, shot, tmp_path):
    upload = tmp_path / "sun.png"
    upload.write_bytes(png_bytes(blob(60, 60, (250, 200, 20))))
    page.set_input_files("#upload-input", str(upload))
    wait_until(lambda: "image: refs/sun.png" in served.session.text, what="the uploaded instance")
    assert "    label: sun\n" in served.session.text
    settled(page, served)
    assert (served.path.parent / "refs" / "sun.png").is_file()
    assert page.locator("#canvas .box").count() == 3
    shot(page, "10-uploaded")
    page.click(".tabs [data-tab='yaml']")
    assert page.input_value("#yaml-text") == served.session.text
    page.click(".tabs [data-tab='layout']")
    page.wait_for_selector("#preview-image[src*='preview.png']")
    wait_until(lambda: page.evaluate("() => document.getElementById('preview-image').naturalWidth") > 256,
               what="the layout preview picture to load")
    shot(page, "11-layout-tab")


def test_mask_auto_takes_a_click_on_the_reference_and_runs_sam(page, served, shot):
    page.locator("#canvas .box[data-i='1'] rect.frame").click(position={"x": 20, "y": 60})
    page.fill("#instance-form [data-key='image']", "refs/photo.jpg")
    page.select_option("#instance-form [data-act='mask-mode']", "auto")
    wait_until(lambda: "image: refs/photo.jpg\n" in served.session.text and "    mask: auto\n" in served.session.text,
               what="mask: auto")
    page.wait_for_selector("#instance-form [data-act='ref-image'][data-size='72x60']")
    ref = page.locator("#instance-form [data-act='ref-image']")
    wait_until(lambda: page.evaluate("() => document.querySelector('[data-act=ref-image]').naturalWidth") > 0,
               what="the reference picture")
    for attempt in range(5):  # the form re-renders when a preview lands; a click on the old picture is lost
        box = ref.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        try:
            wait_until(lambda: "point: [36, 30]" in served.session.text, timeout=4, what="the SAM point in the YAML")
            break
        except AssertionError:
            if attempt == 4:
                raise
    wait_until(lambda: "SAM masks ready" in page.inner_text("#status"), timeout=60, what="SAM to finish")
    settled(page, served)
    assert page.is_hidden("#canvas-note")
    shot(page, "12-sam-point")


def test_without_the_token_the_page_is_read_only(browser, served, shot):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.goto(served.url.split("?")[0])
    pg.wait_for_selector("body[data-ready='1']")
    assert pg.is_visible("#readonly") and pg.is_disabled("#save") and pg.is_disabled("#render")
    before = served.session.text
    box = pg.locator("#canvas").bounding_box()
    pg.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.75)
    pg.mouse.down()
    pg.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, steps=5)
    pg.mouse.up()
    time.sleep(0.5)
    assert served.session.text == before
    shot(pg, "13-read-only")
    context.close()
