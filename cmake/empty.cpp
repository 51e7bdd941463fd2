// libcnnc is its stages' libraries, linked whole (cmake/install.cmake); no code of its own.
