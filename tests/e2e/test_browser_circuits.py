"""End to end in headless Chromium: a Circuits link with a node, a supernode and an
intervention renders the graph, the node's edges and the before/after verdict with no exception,
a click on a graph node selects it, and the share link keeps every setting."""

from __future__ import annotations

from tests.e2e import helpers as H
from tests.e2e.helpers import needs_chromium

pytestmark = needs_chromium

LINK = "model=othello8&moves=d3c5f6f5e6e3c3d2c4b3&nodes=0.80&edges=0.98&target=top&pin=T0"


def test_a_circuits_link_renders_the_graph_and_a_click_selects_a_node(app_url, browser):
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(f"{app_url}/circuits?{LINK}")
    page.get_by_text("Replacement score").first.wait_for(timeout=240_000)
    page.wait_for_function(H.RUN_ENDED, timeout=120_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    graph = page.locator('[data-testid="stMain"] .js-plotly-plot').first
    graph.wait_for(timeout=60_000)
    graph.scroll_into_view_if_needed()
    # click the first feature node (plotly gives its pixel position)
    xy = page.evaluate("""() => {
        const g = [...document.querySelectorAll('[data-testid=stMain] .js-plotly-plot')][0];
        const trace = g._fullData.findIndex(t => t.name === 'feature');
        const x = g._fullData[trace].x[0], y = g._fullData[trace].y[0];
        const r = g.getBoundingClientRect(), l = g._fullLayout;
        return [r.left + l.margin.l + l.xaxis.l2p(x), r.top + l.margin.t + l.yaxis.l2p(y), g._fullData[trace].customdata[0]];
    }""")
    page.mouse.click(xy[0], xy[1])
    page.wait_for_function(H.RUN_ENDED, timeout=120_000)
    page.get_by_text("Strongest inputs").first.wait_for(timeout=60_000)
    page.wait_for_function("(name) => location.search.includes('node=' + name)", arg=xy[2], timeout=60_000)  # the clicked node is the selected one
    H.keep_screenshot(page, "circuits_othello8")
    link = H.share_link_of(page)
    for part in ("nodes=0.80", "edges=0.98", "pin=T0", "target=top", f"node={xy[2]}"):
        assert part in link, link
    page.close()
