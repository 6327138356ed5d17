// Bundled into the pages of the two-device test (local.browser.test.mjs): the package in
// Chromium over the dev node, driven from Node with page.evaluate.
import logos from "logos-chat";
import { waitFor } from "./scenarios.mjs";

window.logos = logos;
window.url = new URLSearchParams(location.search).get("url");
window.waitFor = (chat, event, pred) => waitFor(chat, event, pred, 60_000);
window.ready = true;
