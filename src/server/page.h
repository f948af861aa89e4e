/* The page the program serves at / when no web root is configured. */
#ifndef WSIO_SERVER_PAGE_H
#define WSIO_SERVER_PAGE_H

extern const char server_page_html[];

#endif
