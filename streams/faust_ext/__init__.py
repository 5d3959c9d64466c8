"""Every subclass, override or private-attribute use of Faust, mode and aiokafka, and of
aiohttp where Faust serves HTTP through it.

Each module here opens with what it changes in the framework, why, and the upstream issue
or fix it stands for. All of them were checked against :data:`CHECKED_FAUST_VERSION`; a
test fails when the installed faust-streaming differs, so an upgrade means reading each
module again against the new framework source (and then moving the version here); the
same for the minor versions of aiokafka and aiohttp.
Nothing outside this package names a private framework attribute (a test greps for it).
"""

CHECKED_FAUST_VERSION = "0.15.3"
CHECKED_AIOKAFKA_VERSION = "0.14"
CHECKED_AIOHTTP_VERSION = "3.14"
