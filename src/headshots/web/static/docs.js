// /docs: Swagger UI over this service's /openapi.json (a file, as the
// Content-Security-Policy forbids inline script).
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  window.SwaggerUIBundle({ url: "/openapi.json", dom_id: "#docs", deepLinking: true });
});
