/*
 * The canary page (src/obs/ui.html), built into the binary at build time by
 * cmake/embed.cmake: one self-contained HTML file, no CDN, no build step.
 */
#ifndef MG_OBS_UI_H
#define MG_OBS_UI_H

#include <stddef.h>

/** The page's bytes (NUL-terminated for convenience; the length excludes the NUL). */
extern const unsigned char mg_ui_html[];

/** The page's length in bytes. */
extern const size_t mg_ui_html_len;

#endif
